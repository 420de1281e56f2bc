"""How certain a robustness result is: intervals over seeds, paired differences, a paired
bootstrap over test images, and the corruption error (mCE).

Over seeds (``n`` runs of one variant, values ``x_1 .. x_n``), the Student t interval::

    mean +- t_{(1+c)/2, n-1} * s / sqrt(n)        (s: sample standard deviation, c: 0.95)

The difference to the reference variant is paired by seed (``d_i = x_i - r_i``, the same
seed means the same data order, initialisation and distortion draws) and gets the same
interval on ``d``. The verdict is ``'better'`` when the whole interval lies on the good
side of 0, ``'worse'`` when it lies on the bad side, and ``'no detectable difference'``
otherwise (also when there are too few seeds for an interval).

Within one run, the paired bootstrap resamples the test images with replacement: one
weight vector ``w`` (multinomial counts, ``sum w = n_images``) per replicate is applied to
both models and to every condition, so each replicate is the same image sample
everywhere. The metric is recomputed per replicate from per-image records: top-1
correctness for classification, per-detection TP/FP flags for VOC AP50 (the matching of
detections to ground truth happens inside one image, so resampling images only reweights
the flags; COCO-style mAP over IoU 0.5:0.95 likewise, with one flag per threshold). The
interval is the percentile interval of the replicates.

Corruption error (Hendrycks and Dietterich, ICLR 2019) with the error ``E = full - m``
(``full`` = 1 for mAP, 100 for accuracy in percent) and a reference model ``ref``::

    CE_d   = sum_s E_{d,s} / sum_s E^ref_{d,s}                          mCE   = mean_d CE_d
    rCE_d  = sum_s (E_{d,s} - E_clean) / sum_s (E^ref_{d,s} - E^ref_clean)   rel. mCE = mean_d rCE_d
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    'Interval', 't_interval', 'paired_difference', 'verdict', 'bootstrap_weights',
    'percentile_interval', 'DetectionRecords', 'detection_records', 'voc_ap50', 'top1',
    'coco_detection_records', 'coco_map', 'detection_map', 'COCO_IOU_THRS',
    'corruption_errors', 'BETTER', 'WORSE', 'NO_DIFFERENCE'
]

BETTER = 'better'
WORSE = 'worse'
NO_DIFFERENCE = 'no detectable difference'


@dataclass(frozen=True)
class Interval:
    """A mean (or point estimate) with its confidence interval; ``nan`` bounds when undefined."""
    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def as_dict(self) -> dict:
        return dict(asdict(self), half_width=self.half_width)


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student t interval of ``values`` (non-finite values are left out)."""
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, confidence)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0:
        return Interval(mean, mean, mean, n, confidence)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, confidence)


def paired_difference(values: Mapping[int, float], reference: Mapping[int, float],
                      confidence: float = 0.95) -> Interval:
    """t interval of ``values[seed] - reference[seed]`` over the seeds both have."""
    seeds = sorted(set(values) & set(reference))
    return t_interval([values[s] - reference[s] for s in seeds], confidence)


def verdict(interval: Interval, higher_is_better: bool = True) -> str:
    """``better`` / ``worse`` when the interval of a difference excludes 0, else no difference."""
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return NO_DIFFERENCE
    if interval.low > 0:
        return BETTER if higher_is_better else WORSE
    if interval.high < 0:
        return WORSE if higher_is_better else BETTER
    return NO_DIFFERENCE


# ----------------------------------------------------------------------- bootstrap
def bootstrap_weights(num_images: int, num_replicates: int, seed: int = 0) -> np.ndarray:
    """``(num_replicates, num_images)`` multinomial counts: each row one resampled test set."""
    if num_images < 1 or num_replicates < 1:
        raise ValueError(f'need at least one image and one replicate, got {num_images} images, '
                         f'{num_replicates} replicates')
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_images, np.full(num_images, 1.0 / num_images),
                           size=num_replicates).astype(np.float64)


def percentile_interval(samples: np.ndarray, estimate: float,
                        confidence: float = 0.95) -> Interval:
    """Percentile interval of bootstrap ``samples`` around the full-sample ``estimate``."""
    s = _finite(np.asarray(samples).ravel())
    if len(s) == 0:
        return Interval(float(estimate), math.nan, math.nan, 0, confidence)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(s, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), len(s), confidence)


def top1(correct: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """Accuracy in percent of per-image ``correct`` flags; per replicate with ``weights``."""
    correct = np.asarray(correct, dtype=np.float64)
    if weights is None:
        return float(100 * correct.mean())
    return 100 * (weights @ correct) / weights.sum(axis=1)


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
        bboxes = np.asarray(item['bboxes'], dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(item['scores'], dtype=np.float32).reshape(-1)
        labels = np.asarray(item['labels'], dtype=np.int64).reshape(-1)
        gt_bboxes = np.asarray(item['gt_bboxes'], dtype=np.float32).reshape(-1, 4)
        gt_labels = np.asarray(item['gt_labels'], dtype=np.int64).reshape(-1)
        gt_ignore = np.asarray(item.get('gt_ignore', np.zeros(len(gt_labels), bool)),
                               dtype=bool).reshape(-1)
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
        bboxes = np.asarray(item['bboxes'], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(item['scores'], dtype=np.float64).reshape(-1)
        labels = np.asarray(item['labels'], dtype=np.int64).reshape(-1)
        gt_bboxes = np.asarray(item['gt_bboxes'], dtype=np.float64).reshape(-1, 4)
        gt_labels = np.asarray(item['gt_labels'], dtype=np.int64).reshape(-1)
        gt_ignore = np.asarray(item.get('gt_ignore', np.zeros(len(gt_labels), bool)),
                               dtype=bool).reshape(-1)
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


# ---------------------------------------------------------------------------- mCE
def corruption_errors(metric: Mapping[str, Mapping[int, float]], clean: float,
                      reference: Mapping[str, Mapping[int, float]], reference_clean: float,
                      full: float = 1.0) -> dict:
    """``CE_d``, ``rCE_d`` per distortion and their means ``mCE``, ``relative_mCE``.

    ``metric[d][s]`` is the model's metric under distortion ``d`` at severity ``s`` (higher
    is better, at most ``full``); ``reference`` the reference model's on the same pairs.
    Only severities both have are used. Results are ratios (1.0 = as good as the reference).
    """
    ce, rce = {}, {}
    for d, by_sev in metric.items():
        sevs = sorted(set(by_sev) & set(reference.get(d, {})))
        if not sevs:
            continue
        err = np.array([full - by_sev[s] for s in sevs])
        ref = np.array([full - reference[d][s] for s in sevs])
        ce[d] = float(err.sum() / ref.sum()) if ref.sum() > 0 else math.nan
        ref_rel = (ref - (full - reference_clean)).sum()
        rce[d] = float((err - (full - clean)).sum() / ref_rel) if ref_rel > 0 else math.nan
    return dict(CE=ce, rCE=rce, mCE=float(np.mean(list(ce.values()))) if ce else math.nan,
                relative_mCE=float(np.mean(list(rce.values()))) if rce else math.nan)
