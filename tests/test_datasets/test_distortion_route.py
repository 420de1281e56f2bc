"""One distortion route: one seeding function, one pipeline insertion, one table.

That the detection grid shows the sweep's pixels is tested in test_evaluation/test_robustness_sweep.py,
beside the tiny detector it needs."""
from __future__ import annotations

import numpy as np
import pytest

import fq_det  # noqa: F401
from fq_det.datasets.distortion_route import (distortion_rng, file_image_key, image_key,
                                              insert_distort, stable_seed)
from fq_det.datasets.distortions import SEVERITY_TABLE, distort


def test_seed_is_one_function_of_image_key_distortion_severity_seed():
    assert file_image_key('/any/folder/000012.jpg') == image_key('000012', 'x/000012.jpg') == \
        '000012|000012.jpg'
    a = distortion_rng(0, '000012|000012.jpg', 'jpeg', 3).random(4)
    assert np.array_equal(a, np.random.default_rng(
        stable_seed(0, '000012|000012.jpg', 'jpeg', 3)).random(4))
    for other in [(1, '000012|000012.jpg', 'jpeg', 3), (0, '000013|000013.jpg', 'jpeg', 3),
                  (0, '000012|000012.jpg', 'ngrn', 3), (0, '000012|000012.jpg', 'jpeg', 4)]:
        assert not np.array_equal(a, distortion_rng(*other).random(4))


def test_insert_distort_for_classification():
    in_memory = [dict(type='PackInputs')]
    out = insert_distort(in_memory, 'targeted_occlusion', 2, seed=4, task='classification')
    assert [t['type'] for t in out] == ['mmdet.WholeImageBox', 'mmdet.Distort', 'PackInputs']
    files = [dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=8),
             dict(type='PackInputs')]
    out = insert_distort(files, 'jpeg', 1, task='classification')
    assert [t['type'] for t in out] == ['LoadImageFromFile', 'mmdet.Distort',
                                        'RandomResizedCrop', 'PackInputs']
    with pytest.raises(ValueError, match='valid choices: detection, classification'):
        insert_distort(files, 'jpeg', 1, task='segmentation')


def test_table_holds_the_functions_distort_runs():
    img = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    boxes = np.array([[2.0, 3.0, 20.0, 18.0]])
    for name, spec in SEVERITY_TABLE.items():
        assert callable(spec.function) and len(spec.levels) == 5
        extra = (boxes, ) if spec.needs_boxes else ()
        expected = spec.function(img, spec.levels[3], np.random.default_rng(5), *extra)
        got = distort(img, name, 4, np.random.default_rng(5), boxes=boxes)
        assert np.array_equal(got, expected), name
