"""Distort / RandomDistort: seeding, boxes, errors, and inside real MMDetection pipelines."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

import fq_det  # noqa: F401  (registers the transforms)
from fq_det.datasets.distortions import DISTORTIONS
from fq_det.datasets.transforms import Distort, RandomDistort, stable_seed
from fq_det.evaluation.robustness import insert_distort


@pytest.fixture(autouse=True, scope='module')
def mmdet_scope():
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # pipelines resolve 'LoadImageFromFile', 'Distort' in mmdet


def _results(img_id='000001', path='/data/a/VOC2007/JPEGImages/000001.jpg', seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return dict(img=img, img_id=img_id, img_path=path, img_shape=img.shape[:2],
                ori_shape=img.shape[:2])


def test_stable_seed_is_a_fixed_function_of_its_parts():
    # A constant: independent of PYTHONHASHSEED, the process and the run.
    assert stable_seed(0, '000001|000001.jpg', 'jpeg', 3) == \
        stable_seed(0, '000001|000001.jpg', 'jpeg', 3) == 0xcc18cf9624f23d2c9b8fbddf3de58dd6
    assert stable_seed(1, 'x', 'jpeg', 3) != stable_seed(0, 'x', 'jpeg', 3)


def test_distort_same_image_same_bytes_other_image_or_seed_differs():
    t = Distort('ngrn', 2)
    a = t(_results())['img']
    assert a.tobytes() == Distort('ngrn', 2)(_results())['img'].tobytes()
    # The folder does not matter (same data set on another machine) ...
    moved = _results(path='/elsewhere/VOC2007/JPEGImages/000001.jpg')
    assert a.tobytes() == t(moved)['img'].tobytes()
    # ... but the image identity, the seed, the severity and the distortion do.
    assert a.tobytes() != t(_results(img_id='000002'))['img'].tobytes()
    assert a.tobytes() != Distort('ngrn', 2, seed=1)(_results())['img'].tobytes()
    assert a.tobytes() != Distort('ngrn', 3)(_results())['img'].tobytes()
    out = t(_results())
    assert out['distortion'] == ('ngrn', 2) and out['img'].dtype == np.uint8
    with pytest.warns(UserWarning, match='before Resize'):
        t(dict(_results(), scale_factor=(0.5, 0.5)))


class _DistortedFiles(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.pipeline = Compose([dict(type='LoadImageFromFile'),
                                 dict(type='Distort', distortion='salt_pepper', severity=3)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.pipeline(dict(img_path=self.paths[i], img_id=str(i)))['img']


def test_same_bytes_with_0_and_2_dataloader_workers(synthetic_voc_root):
    paths = sorted(str(p) for p in (synthetic_voc_root / 'VOC2007' / 'JPEGImages').glob('*.jpg'))
    assert len(paths) >= 4
    ds = _DistortedFiles(paths[:4])

    def load(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=workers,
                                             collate_fn=pseudo_collate, shuffle=False)
        return [batch[0].tobytes() for batch in loader]

    single, multi = load(0), load(2)
    assert single == multi
    assert len(set(single)) == 4


def _box_formats(boxes):
    from mmdet.structures.bbox import HorizontalBoxes
    return [boxes, torch.as_tensor(boxes), HorizontalBoxes(torch.as_tensor(boxes))]


def test_targeted_occlusion_takes_boxes_in_any_mmdet_form():
    boxes = np.array([[5.0, 5.0, 40.0, 30.0], [50.0, 20.0, 75.0, 55.0]], np.float32)
    outs = []
    for b in _box_formats(boxes):
        r = _results()
        r['gt_bboxes'] = b
        outs.append(Distort('targeted_occlusion', 4)(r)['img'])
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    changed = np.any(outs[0] != _results()['img'], axis=2)
    inside = np.zeros_like(changed)
    inside[5:30, 5:40] = inside[20:55, 50:75] = True
    assert changed.any() and not (changed & ~inside).any()


def test_errors_list_valid_choices():
    with pytest.raises(ValueError, match='valid choices: motion_blur, jpeg, salt_pepper'):
        Distort('fog', 1)
    with pytest.raises(ValueError, match='valid choices: 1, 2, 3, 4, 5'):
        Distort('jpeg', 6)
    with pytest.raises(ValueError, match='valid choices: 1, 2, 3, 4, 5'):
        RandomDistort(severities=(0, 1))
    with pytest.raises(ValueError, match='valid choices'):
        RandomDistort(distortions=['jpeg', 'nope'])
    with pytest.raises(ValueError, match=r'gt_bboxes.*LoadAnnotations.*motion_blur'):
        Distort('targeted_occlusion', 1)(_results())
    r = _results()
    del r['img_id'], r['img_path']
    with pytest.raises(ValueError, match='img_id'):
        Distort('jpeg', 1)(r)
    with pytest.raises(ValueError, match='prob'):
        RandomDistort(prob=1.5)


def test_float_and_gray_images_keep_their_type():
    r = _results()
    r['img'] = r['img'].astype(np.float32)
    out = Distort('gaussian_noise', 2)(r)['img']
    assert out.dtype == np.float32 and out.shape == (60, 80, 3)
    assert not np.array_equal(out, _results()['img'].astype(np.float32))
    r = _results()
    r['img'] = r['img'][..., 0].copy()
    out = Distort('motion_blur', 2)(r)['img']
    assert out.shape == (60, 80) and out.dtype == np.uint8


def test_random_distort_prob_and_reproducible_with_global_seed():
    clean = _results()['img']
    assert np.array_equal(RandomDistort(prob=0.0)(_results())['img'], clean)
    t = RandomDistort(prob=1.0)
    assert 'targeted_occlusion' not in t.distortions and len(t.distortions) == 6
    np.random.seed(0)
    first = [t(_results())['img'].tobytes() for _ in range(6)]
    np.random.seed(0)
    again = [t(_results())['img'].tobytes() for _ in range(6)]
    assert first == again
    assert all(f != clean.tobytes() for f in first) and len(set(first)) > 1
    np.random.seed(1)
    r = RandomDistort(distortions=['targeted_occlusion'], severities=[5], prob=1.0)
    res = _results()
    res['gt_bboxes'] = np.array([[0, 0, 40, 40]], np.float32)
    out = r(res)
    assert out['distortion'] == ('targeted_occlusion', 5)


def _voc_dataset(root, pipeline):
    from mmdet.datasets import VOCDataset

    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    return VOCDataset(data_root=str(root), ann_file='VOC2007/ImageSets/Main/test.txt',
                      data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True,
                      metainfo=dict(classes=SYNTH_CLASSES), pipeline=pipeline)


VOC_TEST_PIPELINE = [  # mmdet's configs/_base_/datasets/voc0712.py test pipeline
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(100, 80), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


@pytest.mark.parametrize('distortion', ['targeted_occlusion', 'motion_blur'])
def test_inside_mmdet_voc_test_pipeline(synthetic_voc_root, distortion):
    clean_ds = _voc_dataset(synthetic_voc_root, copy.deepcopy(VOC_TEST_PIPELINE))
    pipeline = insert_distort(VOC_TEST_PIPELINE, distortion, 5)
    ds = _voc_dataset(synthetic_voc_root, pipeline)
    for i in range(len(ds)):
        clean, dist = clean_ds[i], ds[i]
        # The image is distorted, resized as before; the ground truth stays in original pixels.
        assert dist['inputs'].shape == clean['inputs'].shape
        assert not torch.equal(dist['inputs'], clean['inputs'])
        assert torch.equal(dist['data_samples'].gt_instances.bboxes.tensor,
                           clean['data_samples'].gt_instances.bboxes.tensor)
        assert dist['data_samples'].scale_factor == clean['data_samples'].scale_factor


def test_targeted_occlusion_on_voc_only_inside_gt_boxes(synthetic_voc_root):
    load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    clean_ds = _voc_dataset(synthetic_voc_root, load)
    ds = _voc_dataset(synthetic_voc_root, load + [dict(type='Distort',
                                                       distortion='targeted_occlusion',
                                                       severity=3)])
    for i in range(len(ds)):
        clean, dist = clean_ds[i], ds[i]
        changed = np.any(clean['img'] != dist['img'], axis=2)
        inside = np.zeros_like(changed)
        for x1, y1, x2, y2 in clean['gt_bboxes'].tensor.numpy():
            inside[int(np.ceil(y1)):int(np.floor(y2)), int(np.ceil(x1)):int(np.floor(x2))] = True
        assert changed.any() and not (changed & ~inside).any()
        # The same image again: the same bytes.
        assert np.array_equal(ds[i]['img'], dist['img'])


def test_every_distortion_in_a_pipeline(synthetic_voc_root):
    for name in DISTORTIONS:
        ds = _voc_dataset(synthetic_voc_root, insert_distort(VOC_TEST_PIPELINE, name, 1))
        assert ds[0]['inputs'].dtype == torch.uint8
