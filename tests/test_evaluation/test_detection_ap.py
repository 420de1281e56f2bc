"""Detection AP (fq_det/evaluation/detection_ap.py): the weighted VOC AP against mmdet's
eval_map, on all images and on bootstrap-resampled image lists (COCO mAP against
pycocotools: tests/test_evaluation/test_coco_format.py)."""
from __future__ import annotations

import numpy as np
import pytest

from fq_det.evaluation.detection_ap import detection_records, voc_ap50
from fq_det.evaluation.statistics import bootstrap_weights


def _random_images(rng: np.random.Generator, n: int, num_classes: int) -> list[dict]:
    images = []
    for _ in range(n):
        m = int(rng.integers(1, 4))
        xy = rng.uniform(0, 80, (m, 2))
        gt = np.hstack([xy, xy + rng.uniform(10, 40, (m, 2))]).astype(np.float32)
        gt_labels = rng.integers(0, num_classes, m)
        k = int(rng.integers(0, 6))
        pick = rng.integers(0, m, k)
        det = gt[pick] + rng.normal(0, 6, (k, 4)).astype(np.float32)  # near a GT: some TP
        images.append(dict(bboxes=det, scores=rng.uniform(0, 1, k).astype(np.float32),
                           labels=np.where(rng.uniform(size=k) < 0.8, gt_labels[pick],
                                           rng.integers(0, num_classes, k)),
                           gt_bboxes=gt, gt_labels=gt_labels,
                           gt_ignore=rng.uniform(size=m) < 0.15))
    return images


def _eval_map(images: list[dict], num_classes: int, mode: str) -> float:
    from mmdet.evaluation.functional import eval_map
    dets, anns = [], []
    for im in images:
        dets.append([np.hstack([im['bboxes'][im['labels'] == c],
                                im['scores'][im['labels'] == c, None]]) for c in range(num_classes)])
        anns.append(dict(bboxes=im['gt_bboxes'][~im['gt_ignore']],
                         labels=im['gt_labels'][~im['gt_ignore']],
                         bboxes_ignore=im['gt_bboxes'][im['gt_ignore']],
                         labels_ignore=im['gt_labels'][im['gt_ignore']]))
    mean_ap, _ = eval_map(dets, anns, iou_thr=0.5, eval_mode=mode, use_legacy_coordinate=True,
                          logger='silent')
    return float(mean_ap)


@pytest.mark.parametrize('mode', ['11points', 'area'])
def test_voc_ap50_equals_mmdet_eval_map(mode: str) -> None:
    rng = np.random.default_rng(0)
    images = _random_images(rng, 40, num_classes=3)
    records = detection_records(images, num_classes=3)
    assert voc_ap50(records, mode=mode) == pytest.approx(_eval_map(images, 3, mode), abs=1e-6)

    # A bootstrap replicate (integer image counts) equals eval_map on the resampled image list.
    weights = bootstrap_weights(len(images), 3, seed=1)
    per_rep = voc_ap50(records, weights, mode=mode)
    for w, value in zip(weights, per_rep):
        resampled = [im for im, c in zip(images, w.astype(int)) for _ in range(c)]
        assert value == pytest.approx(_eval_map(resampled, 3, mode), abs=1e-6)
