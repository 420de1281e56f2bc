"""Detection AP from per-detection records that a per-image weight can resample: VOC AP50
and COCO bbox mAP, for the image bootstrap (:mod:`fq_det.evaluation.statistics`) and for
the metric of any subset of test images (:mod:`fq_det.evaluation.per_image`).

Detections are matched to ground truth inside their image, so each gets fixed TP/FP flags
(:class:`DetectionRecords`); a resampled test set (image ``i`` drawn ``w_i`` times) only
reweights them. Per class ``c``, over the detections of all images sorted by score::

    TP(k) = sum_{j <= k} w_{img(j)} tp_j        FP(k) = sum_{j <= k} w_{img(j)} fp_j
    recall(k) = TP(k) / sum_i w_i n_ic          precision(k) = TP(k) / (TP(k) + FP(k))

(``n_ic``: image ``i``'s non-ignored ground-truth boxes of class ``c``).

* VOC (:func:`detection_records`, :func:`voc_ap50`): flags from mmdet's ``tpfp_default``
  at IoU 0.5 (``iou_thr``); ``AP_c = 1/11 sum_{t in {0, 0.1, .., 1}} max_{recall >= t} precision``
  (``'11points'``) or the area under the non-increasing precision envelope (``'area'``),
  as ``mmdet.evaluation.functional.eval_map``.
* COCO (:func:`coco_detection_records`, :func:`coco_map`): flags from pycocotools'
  greedy matching at each IoU threshold ``T in {0.5, 0.55, .., 0.95}``
  (:data:`COCO_IOU_THRS`), crowd boxes ignored; ``AP_{c,T} = 1/101 sum_{r in {0, 0.01,
  .., 1}} p(r)`` with ``p`` the precision made non-increasing from the right, read at
  the first recall ``>= r`` (0 beyond the last), as ``COCOeval.accumulate``.

mAP: the mean of ``AP_c`` (COCO: of ``AP_{c,T}``) over the classes with ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    'DetectionRecords', 'detection_records', 'voc_ap50', 'coco_detection_records', 'coco_map',
    'detection_map', 'COCO_IOU_THRS'
]


@dataclass
class DetectionRecords:
    """One condition's detections as VOC matching sees them.

    ``image``, ``label``, ``score``, ``tp``, ``fp``: one entry per detection (``tp``/``fp``
    both 0 for a detection matched to an ignored ground truth); ``num_gt``:
    ``(num_images, num_classes)`` non-ignored ground-truth boxes per image and class.
    """
    image: np.ndarray
    label: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    num_gt: np.ndarray

    @property
    def num_images(self) -> int:
        return self.num_gt.shape[0]


def _image_arrays(item: Mapping, dtype) -> tuple[np.ndarray, ...]:
    """``bboxes, scores, labels, gt_bboxes, gt_labels, gt_ignore`` of one image as arrays
    (boxes and scores in ``dtype``; ``gt_ignore`` all False when absent)."""
    gt_labels = np.asarray(item['gt_labels'], dtype=np.int64).reshape(-1)
    return (np.asarray(item['bboxes'], dtype=dtype).reshape(-1, 4),
            np.asarray(item['scores'], dtype=dtype).reshape(-1),
            np.asarray(item['labels'], dtype=np.int64).reshape(-1),
            np.asarray(item['gt_bboxes'], dtype=dtype).reshape(-1, 4),
            gt_labels,
            np.asarray(item.get('gt_ignore', np.zeros(len(gt_labels), bool)),
                       dtype=bool).reshape(-1))


def detection_records(images: Sequence[Mapping], num_classes: int, iou_thr: float = 0.5,
                      use_legacy_coordinate: bool = True) -> DetectionRecords:
    """TP/FP flags of every detection, matched per image and class by mmdet's VOC rule.

    Each item of ``images`` has ``bboxes`` ``(N, 4)``, ``scores`` ``(N,)``, ``labels``
    ``(N,)`` (predictions) and ``gt_bboxes`` ``(M, 4)``, ``gt_labels`` ``(M,)``,
    ``gt_ignore`` ``(M,)`` bool. Matching is ``mmdet.evaluation.functional.mean_ap.tpfp_default``
    (legacy ``+1`` box coordinates as ``VOCMetric`` uses them for VOC).
    """
    from mmdet.evaluation.functional.mean_ap import tpfp_default

    cols = {k: [] for k in ('image', 'label', 'score', 'tp', 'fp')}
    num_gt = np.zeros((len(images), num_classes), dtype=np.int64)
    for i, item in enumerate(images):
        bboxes, scores, labels, gt_bboxes, gt_labels, gt_ignore = _image_arrays(item, np.float32)
        for c in range(num_classes):
            keep = labels == c
            gt_c = gt_labels == c
            num_gt[i, c] = int((gt_c & ~gt_ignore).sum())
            if not keep.any():
                continue
            det = np.concatenate([bboxes[keep], scores[keep, None]], axis=1)
            tp, fp = tpfp_default(det, gt_bboxes[gt_c & ~gt_ignore], gt_bboxes[gt_c & gt_ignore],
                                  iou_thr=iou_thr, use_legacy_coordinate=use_legacy_coordinate)
            cols['image'].append(np.full(int(keep.sum()), i))
            cols['label'].append(np.full(int(keep.sum()), c))
            cols['score'].append(scores[keep])
            cols['tp'].append(tp[0])
            cols['fp'].append(fp[0])
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    return DetectionRecords(image=cat['image'].astype(np.int64),
                            label=cat['label'].astype(np.int64),
                            score=cat['score'].astype(np.float64), tp=cat['tp'].astype(np.float64),
                            fp=cat['fp'].astype(np.float64), num_gt=num_gt)


def voc_ap50(records: DetectionRecords, weights: np.ndarray | None = None,
             mode: str = '11points') -> np.ndarray | float:
    """VOC mAP of ``records``; with ``weights`` ``(B, num_images)`` one value per replicate.

    Per class: detections sorted by score, ``TP(k) = sum_{j<=k} w_img(j) tp_j`` (same for FP),
    recall ``TP / sum_i w_i num_gt_ic``, precision ``TP / (TP + FP)``; AP by ``mode``
    (``'11points'``: mean over ``t in {0, 0.1, .., 1}`` of the best precision at recall >= t;
    ``'area'``: area under the monotone precision envelope), as
    ``mmdet.evaluation.functional.average_precision``. mAP: mean over classes with ground truth.
    """
    if mode not in ('11points', 'area'):
        raise ValueError(f"mode must be '11points' or 'area', got {mode!r}")
    single = weights is None
    w = np.ones((1, records.num_images)) if single else np.asarray(weights, dtype=np.float64)
    num_classes = records.num_gt.shape[1]
    npos = w @ records.num_gt  # (B, C)
    aps = np.zeros((w.shape[0], num_classes))
    for c in range(num_classes):
        idx = np.flatnonzero(records.label == c)
        if idx.size == 0:
            continue
        order = idx[np.argsort(-records.score[idx], kind='stable')]
        wd = w[:, records.image[order]]  # (B, D)
        tp = np.cumsum(wd * records.tp[order], axis=1)
        fp = np.cumsum(wd * records.fp[order], axis=1)
        eps = np.finfo(np.float32).eps
        recall = tp / np.maximum(npos[:, c:c + 1], eps)
        precision = tp / np.maximum(tp + fp, eps)
        if mode == '11points':
            for t in np.arange(0, 1.1, 0.1):
                aps[:, c] += np.where(recall >= t, precision, 0).max(axis=1, initial=0)
            aps[:, c] /= 11
        else:
            zeros, ones = np.zeros((w.shape[0], 1)), np.ones((w.shape[0], 1))
            mrec = np.hstack([zeros, recall, ones])
            mpre = np.hstack([zeros, precision, zeros])
            mpre = np.maximum.accumulate(mpre[:, ::-1], axis=1)[:, ::-1]
            aps[:, c] = np.sum((mrec[:, 1:] - mrec[:, :-1]) * mpre[:, 1:], axis=1)
    has_gt = npos > 0
    maps = np.where(has_gt, aps, 0).sum(axis=1) / np.maximum(has_gt.sum(axis=1), 1)
    return float(maps[0]) if single else maps


#: COCO's IoU thresholds 0.5, 0.55, ..., 0.95 (``COCOeval.params.iouThrs``).
COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)
_COCO_RECALLS = np.linspace(0.0, 1.0, 101)


def _coco_ious(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' box IoU ``(D, G)`` of xyxy boxes; for a crowd box ``inter / area(det)``."""
    iw = np.minimum(det[:, None, 2], gt[None, :, 2]) - np.maximum(det[:, None, 0], gt[None, :, 0])
    ih = np.minimum(det[:, None, 3], gt[None, :, 3]) - np.maximum(det[:, None, 1], gt[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    det_area = ((det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]))[:, None]
    gt_area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None]
    union = np.where(crowd[None], det_area, det_area + gt_area - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _coco_match(ious: np.ndarray, ignore: np.ndarray, thrs: np.ndarray,
                det_area: np.ndarray) -> tuple:
    """``COCOeval.evaluateImg``'s greedy matching of score-sorted detections to ground
    truth (ignored boxes sorted last; a crowd box may match many detections): per
    threshold, ``(tp, fp)`` flags ``(D, T)``; a detection matched to an ignored box is
    neither, nor is an unmatched one of negative area (outside COCOeval's area range)."""
    num_det, num_gt = ious.shape
    tp, fp = np.zeros((num_det, len(thrs))), np.zeros((num_det, len(thrs)))
    outside = det_area < 0  # COCOeval's area range [0, 1e10] ignores them when unmatched
    for t, thr in enumerate(thrs):
        taken = np.zeros(num_gt, bool)
        for d in range(num_det):
            best, match = min(thr, 1 - 1e-10), -1
            for g in range(num_gt):
                if taken[g] and not ignore[g]:
                    continue
                if match > -1 and not ignore[match] and ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best, match = ious[d, g], g
            if match == -1:
                fp[d, t] = 0 if outside[d] else 1
            elif not ignore[match]:
                tp[d, t] = 1
                taken[match] = True
            else:
                taken[match] = True
    return tp, fp


def coco_detection_records(images: Sequence[Mapping], num_classes: int,
                           max_dets: int = 100) -> DetectionRecords:
    """TP/FP flags of every detection at each of :data:`COCO_IOU_THRS`, matched per image
    and class as pycocotools' ``COCOeval`` does for ``iouType='bbox'``, area 'all'.

    Items of ``images`` as :func:`detection_records`; ``gt_ignore`` marks crowd boxes
    (``CocoDataset``'s ``ignore_flag``). Per image and class the ``max_dets`` best-scored
    detections are kept. ``tp``/``fp`` are ``(D, 10)``.
    """
    cols = {k: [] for k in ('image', 'label', 'score', 'tp', 'fp')}
    num_gt = np.zeros((len(images), num_classes), dtype=np.int64)
    for i, item in enumerate(images):
        bboxes, scores, labels, gt_bboxes, gt_labels, gt_ignore = _image_arrays(item, np.float64)
        for c in range(num_classes):
            gt_c = np.flatnonzero(gt_labels == c)
            gt_c = gt_c[np.argsort(gt_ignore[gt_c], kind='mergesort')]  # ignored last
            num_gt[i, c] = int((~gt_ignore[gt_c]).sum())
            det_c = np.flatnonzero(labels == c)
            det_c = det_c[np.argsort(-scores[det_c], kind='mergesort')][:max_dets]
            if not det_c.size:
                continue
            ious = _coco_ious(bboxes[det_c], gt_bboxes[gt_c], gt_ignore[gt_c])
            box = bboxes[det_c]
            tp, fp = _coco_match(ious, gt_ignore[gt_c], COCO_IOU_THRS,
                                 (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))
            cols['image'].append(np.full(det_c.size, i))
            cols['label'].append(np.full(det_c.size, c))
            cols['score'].append(scores[det_c])
            cols['tp'].append(tp)
            cols['fp'].append(fp)
    width = len(COCO_IOU_THRS)
    cat = {k: (np.concatenate(v) if v else np.zeros((0, width) if k in ('tp', 'fp') else 0))
           for k, v in cols.items()}
    return DetectionRecords(image=cat['image'].astype(np.int64),
                            label=cat['label'].astype(np.int64), score=cat['score'],
                            tp=cat['tp'].astype(np.float64), fp=cat['fp'].astype(np.float64),
                            num_gt=num_gt)


def coco_map(records: DetectionRecords, weights: np.ndarray | None = None,
             iou: str | float = 'all') -> np.ndarray | float:
    """COCO bbox mAP of :func:`coco_detection_records`' records (``iou='all'``: the mean
    over the 10 thresholds, ``coco/bbox_mAP``; ``iou=0.5``: ``coco/bbox_mAP_50``); with
    ``weights`` ``(B, num_images)`` one value per replicate.

    Per class and threshold, as ``COCOeval.accumulate``: detections of all images sorted by
    score, weighted cumulative ``TP`` and ``FP``, recall ``TP / sum_i w_i num_gt_ic``,
    precision ``TP / (TP + FP + eps)`` made non-increasing from the right, read at the
    101 recalls ``0, 0.01, .., 1`` (0 beyond the last recall reached) and averaged;
    the mAP averages over the thresholds and the classes with ground truth.
    """
    thr_index = list(range(len(COCO_IOU_THRS))) if iou == 'all' else \
        [int(np.flatnonzero(np.isclose(COCO_IOU_THRS, float(iou)))[0])]
    single = weights is None
    w = np.ones((1, records.num_images)) if single else np.asarray(weights, dtype=np.float64)
    npos = w @ records.num_gt  # (B, C)
    aps = np.zeros((w.shape[0], npos.shape[1], len(thr_index)))
    for c in range(npos.shape[1]):
        idx = np.flatnonzero(records.label == c)
        if idx.size == 0:
            continue
        order = idx[np.argsort(-records.score[idx], kind='mergesort')]
        wd = w[:, records.image[order]]  # (B, D)
        for k, t in enumerate(thr_index):
            tp = np.cumsum(wd * records.tp[order, t], axis=1)
            fp = np.cumsum(wd * records.fp[order, t], axis=1)
            recall = tp / np.maximum(npos[:, c:c + 1], np.spacing(1))
            precision = tp / (tp + fp + np.spacing(1))
            precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
            for b in range(w.shape[0]):
                at = np.searchsorted(recall[b], _COCO_RECALLS, side='left')
                aps[b, c, k] = np.where(at < idx.size, precision[b, np.minimum(at, idx.size - 1)],
                                        0).mean()
    has_gt = (npos > 0)[:, :, None]
    maps = np.where(has_gt, aps, 0).sum(axis=(1, 2)) / np.maximum(
        has_gt.sum(axis=(1, 2)) * len(thr_index), 1)
    return float(maps[0]) if single else maps


def detection_map(records: DetectionRecords, weights: np.ndarray | None = None,
                  mode: str = '11points') -> np.ndarray | float:
    """The sweep's detection metric of ``records``: VOC AP50 (``mode`` ``'11points'`` or
    ``'area'``, :func:`voc_ap50`) or COCO bbox mAP (``mode='coco'``, :func:`coco_map`)."""
    if mode == 'coco':
        return coco_map(records, weights)
    return voc_ap50(records, weights, mode=mode)
