"""The synthetic VOC generator: layout, determinism, and MMDetection reading it unchanged."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fq_det.datasets.synthetic_voc import SYNTH_CLASSES, make_synthetic_voc


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((root / 'VOC2007').rglob('*')):
        if path.is_file():
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _objects(root: Path) -> list[ET.Element]:
    return [obj for xml in sorted((root / 'VOC2007' / 'Annotations').glob('*.xml'))
            for obj in ET.parse(xml).getroot().findall('object')]


def test_layout(synthetic_voc_root: Path) -> None:
    voc = synthetic_voc_root / 'VOC2007'
    trainval = (voc / 'ImageSets/Main/trainval.txt').read_text().split()
    test = (voc / 'ImageSets/Main/test.txt').read_text().split()
    assert len(trainval) == 8 and len(test) == 4
    assert not set(trainval) & set(test)
    for img_id in trainval + test:
        assert (voc / 'JPEGImages' / f'{img_id}.jpg').stat().st_size > 0
        root = ET.parse(voc / 'Annotations' / f'{img_id}.xml').getroot()
        assert (root.findtext('size/width'), root.findtext('size/height')) == ('160', '120')
        assert root.findall('object'), f'{img_id} has no objects'
        for obj in root.findall('object'):
            assert obj.findtext('name') in SYNTH_CLASSES
            assert obj.findtext('difficult') in ('0', '1')
            assert obj.findtext('truncated') in ('0', '1')
            x0, y0, x1, y1 = (int(obj.findtext(f'bndbox/{t}')) for t in ('xmin', 'ymin', 'xmax', 'ymax'))
            assert 1 <= x0 <= x1 <= 160 and 1 <= y0 <= y1 <= 120


def test_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    a = make_synthetic_voc(tmp_path / 'a', 3, 2, seed=5, image_size=(64, 48))
    b = make_synthetic_voc(tmp_path / 'b', 3, 2, seed=5, image_size=(64, 48))
    c = make_synthetic_voc(tmp_path / 'c', 3, 2, seed=6, image_size=(64, 48))
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_workers_write_the_same_files(tmp_path: Path) -> None:
    one = make_synthetic_voc(tmp_path / 'one', 6, 3, seed=2, image_size=(64, 48), workers=1)
    two = make_synthetic_voc(tmp_path / 'two', 6, 3, seed=2, image_size=(64, 48), workers=2)
    assert _digest(one) == _digest(two)
    with pytest.raises(ValueError, match='workers must be an int >= 1'):
        make_synthetic_voc(tmp_path / 'bad', 1, 1, workers=0)


def test_variety(tmp_path: Path) -> None:
    root = make_synthetic_voc(tmp_path, 30, 1, seed=0, image_size=(96, 72))
    objs = _objects(root)
    names = {o.findtext('name') for o in objs}
    assert names == set(SYNTH_CLASSES)
    assert any(o.findtext('difficult') == '1' for o in objs)
    assert any(o.findtext('truncated') == '1' for o in objs)
    widths = [int(o.findtext('bndbox/xmax')) - int(o.findtext('bndbox/xmin')) for o in objs]
    assert max(widths) > 3 * min(widths)


@pytest.mark.parametrize('bad', [dict(num_train=0, num_test=1), dict(num_train=1, num_test=1, image_size=(10, 10))])
def test_bad_arguments(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError, match='must be'):
        make_synthetic_voc(tmp_path, **bad)


def test_mmdet_voc_dataset_and_metric_read_it(synthetic_voc_root: Path) -> None:
    import fq_det  # noqa: F401
    from mmdet.datasets import VOCDataset
    from mmdet.evaluation import VOCMetric

    counts = {}
    for split, n in (('trainval', 8), ('test', 4)):
        ds = VOCDataset(data_root=str(synthetic_voc_root), ann_file=f'VOC2007/ImageSets/Main/{split}.txt',
                        data_prefix=dict(sub_data_root='VOC2007/'), metainfo=dict(classes=SYNTH_CLASSES),
                        pipeline=[], test_mode=split == 'test')
        assert len(ds) == n
        assert ds.metainfo['dataset_type'] == 'VOC2007'
        counts[split] = sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds)))
        xml_count = sum(len(ET.parse(synthetic_voc_root / 'VOC2007/Annotations' / f'{i}.xml').getroot()
                            .findall('object'))
                        for i in (synthetic_voc_root / f'VOC2007/ImageSets/Main/{split}.txt').read_text().split())
        assert counts[split] == xml_count > 0

    # Ground truth as predictions scores mAP 1.0 through VOCMetric.
    import numpy as np
    import torch
    metric = VOCMetric(iou_thrs=0.5)
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        boxes = np.array([inst['bbox'] for inst in info['instances']], np.float32).reshape(-1, 4)
        labels = np.array([inst['bbox_label'] for inst in info['instances']], np.int64)
        ignore = np.array([inst['ignore_flag'] for inst in info['instances']], bool)
        samples.append(dict(
            gt_instances=dict(bboxes=torch.from_numpy(boxes[~ignore]), labels=torch.from_numpy(labels[~ignore])),
            ignored_instances=dict(bboxes=torch.from_numpy(boxes[ignore]), labels=torch.from_numpy(labels[ignore])),
            pred_instances=dict(bboxes=torch.from_numpy(boxes), labels=torch.from_numpy(labels),
                                scores=torch.ones(len(labels))),
            instances=info['instances'], img_id=info['img_id'], ori_shape=(120, 160)))
    metric.process({}, samples)
    assert metric.evaluate(len(samples))['pascal_voc/mAP'] == pytest.approx(1.0)


def test_cli(tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / 'cli'
    proc = subprocess.run([sys.executable, str(repo_root / 'tools/misc/make_synthetic_voc.py'), '--out', str(out),
                           '--num-train', '2', '--num-test', '1', '--seed', '3', '--size', '64', '48'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len((out / 'VOC2007/ImageSets/Main/trainval.txt').read_text().split()) == 2
    assert str(out) in proc.stdout
    ref = make_synthetic_voc(tmp_path / 'ref', 2, 1, seed=3, image_size=(64, 48))
    assert _digest(out) == _digest(ref)
