"""Per-image records: recomputing VOC mAP / top-k accuracy on any subset of images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fq_det  # noqa: F401
from fq_det.evaluation import (PerImageClsRecords, PerImageDetRecords, load_per_image,
                               topk_accuracy_of_subset, voc_map_of_subset)

CLASSES = ('circle', 'square', 'triangle')


def _det_samples(n: int = 14, seed: int = 0) -> list[dict]:
    """Detections near the ground truth (jittered, random scores) plus false positives."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        xy = rng.uniform(0, 200, (k, 2))
        wh = rng.uniform(20, 80, (k, 2))
        gt = np.hstack([xy, xy + wh]).astype(np.float32)
        labels = rng.integers(0, len(CLASSES), k)
        hard = rng.random(k) < 0.2
        pred = np.vstack([gt + rng.normal(0, 6, gt.shape), rng.uniform(0, 250, (2, 4))])
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        plabels = np.r_[np.where(rng.random(k) < 0.8, labels, rng.integers(0, 3, k)),
                        rng.integers(0, 3, 2)]
        samples.append(dict(
            img_id=f'{i:06d}',
            gt_instances=dict(bboxes=torch.tensor(gt[~hard]), labels=torch.tensor(labels[~hard])),
            ignored_instances=dict(bboxes=torch.tensor(gt[hard]).reshape(-1, 4),
                                   labels=torch.tensor(labels[hard])),
            pred_instances=dict(bboxes=torch.tensor(pred, dtype=torch.float32),
                                scores=torch.tensor(rng.random(len(pred)), dtype=torch.float32),
                                labels=torch.tensor(plabels))))
    return samples


def _voc_map(samples: list[dict], eval_mode: str) -> float:
    from mmdet.evaluation import VOCMetric
    metric = VOCMetric(eval_mode=eval_mode)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))['pascal_voc/mAP']


@pytest.mark.parametrize('eval_mode', ['11points', 'area'])
def test_voc_map_of_subset_equals_vocmetric(tmp_path, eval_mode):
    samples = _det_samples()
    out = tmp_path / 'per_image' / 'clean.npz'
    records_metric = PerImageDetRecords(out_file=str(out), eval_mode=eval_mode)
    records_metric.dataset_meta = dict(classes=CLASSES)
    records_metric.process({}, samples)
    assert records_metric.evaluate(len(samples)) == {}
    rec = load_per_image(str(out))
    assert list(rec['img_ids']) == [s['img_id'] for s in samples]
    assert rec['gt_ignore'].any() and not rec['gt_ignore'].all()
    full = _voc_map(samples, eval_mode)
    assert 0.2 < full < 1.0  # a metric with something to get right
    # VOCMetric accumulates in float32, the weighted route in float64
    assert voc_map_of_subset(rec, np.arange(len(samples))) == pytest.approx(full, abs=1e-6)
    subset = [3, 0, 7, 7, 11]  # any subset, repeats allowed (a bootstrap sample)
    assert voc_map_of_subset(rec, subset) == pytest.approx(
        _voc_map([samples[i] for i in subset], eval_mode), abs=1e-6)
    with pytest.raises(ValueError, match='empty'):
        voc_map_of_subset(rec, [])
    with pytest.raises(ValueError, match=r'image_indices must lie in \[0, 14\), got 0\.\.14'):
        voc_map_of_subset(rec, [0, len(samples)])


def test_per_image_files_hold_no_object_arrays(tmp_path):
    out = tmp_path / 'x.npz'
    metric = PerImageDetRecords(out_file=str(out))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, _det_samples(3))
    metric.evaluate(3)
    with np.load(out, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match=r'bad\.npz is not a per-image record file'):
        load_per_image(str(tmp_path / 'bad.npz'))
    # cut short (a zip without its directory), and empty
    (tmp_path / 'cut.npz').write_bytes(out.read_bytes()[:len(out.read_bytes()) // 2])
    with pytest.raises(ValueError, match=r'cut\.npz is not a per-image record file .*BadZipFile'):
        load_per_image(str(tmp_path / 'cut.npz'))
    (tmp_path / 'empty.npz').write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.npz is not a per-image record file'):
        load_per_image(str(tmp_path / 'empty.npz'))


def test_topk_of_subset_equals_topk_accuracy(tmp_path):
    from mmpretrain.evaluation import Accuracy
    rng = np.random.default_rng(1)
    samples = [dict(img_id=str(i), gt_label=torch.tensor([int(rng.integers(0, 10))]),
                    pred_score=torch.tensor(rng.random(10), dtype=torch.float32))
               for i in range(40)]
    samples[0]['pred_score'][:] = 0.5  # ties count in the sample's favour, as mmpretrain's Accuracy does
    acc = Accuracy(topk=(1, 5))
    acc.process({}, samples)
    expected = acc.evaluate(len(samples))
    rec_metric = PerImageClsRecords(out_file=str(tmp_path / 'c.npz'), topk=5)
    rec_metric.process({}, samples)
    rec_metric.evaluate(len(samples))
    rec = load_per_image(str(tmp_path / 'c.npz'))
    assert rec['topk_labels'].shape == (40, 5) and rec['gt_label'].shape == (40, )
    assert rec['topk_labels'][1, 0] == int(samples[1]['pred_score'].argmax())
    for k in (1, 5):
        assert topk_accuracy_of_subset(rec, np.arange(40), k) == expected[f'accuracy/top{k}']
    sub = [1, 2, 2, 9]
    hits = [int(samples[i]['gt_label']) in rec['topk_labels'][i, :1] for i in sub]
    assert topk_accuracy_of_subset(rec, sub, 1) == pytest.approx(100 * np.mean(hits))
