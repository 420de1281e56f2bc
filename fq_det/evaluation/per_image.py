"""Per-image records of an evaluation, to recompute the metric on any subset of images.

Two mmengine metrics (registered in mmdet's ``METRICS``) that the robustness sweeps
append to the evaluator when ``save_per_image=True``; they compute no metric, they write
one ``.npz`` per evaluation (atomically) and return ``{}``:

* :class:`PerImageDetRecords`: for every test image its predicted boxes, scores and
  labels and its ground-truth boxes, labels and ignore flags, as VOCMetric receives them.
* :class:`PerImageClsRecords`: for every test image its true label, its top-k predicted
  labels and the rank of the true class (as mmpretrain's ``Accuracy`` counts it).

No object arrays: per-image arrays are concatenated, with ``<name>_offsets`` (N + 1)
giving image ``i``'s rows ``offsets[i]:offsets[i + 1]``; :func:`load_per_image` reads a
file with ``allow_pickle=False``. :func:`voc_map_of_subset` recomputes the VOC mAP of a
subset of images (the bootstrap's route, :mod:`fq_det.evaluation.detection_ap`), equal to
``VOCMetric``'s on all images; records of a ``CocoMetric`` evaluation (``eval_mode='coco'``)
are matched as pycocotools does (:func:`~fq_det.evaluation.detection_ap.coco_detection_records`)
and :func:`map_of_subset` gives their COCO bbox mAP (or AP50) on any subset, the VOC mAP
for VOC records; :func:`topk_accuracy_of_subset` does the same for top-k accuracy.
"""
from __future__ import annotations

import zipfile
from typing import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdet.registry import METRICS

from fq_det.evaluation.detection_ap import (DetectionRecords, coco_detection_records, coco_map,
                                           detection_map, detection_records, voc_ap50)
from fq_det.evaluation.statistics import top1
from fq_det.utils.io import atomic_save_npz

__all__ = ['PerImageDetRecords', 'PerImageClsRecords', 'load_per_image', 'image_slices',
           'detection_records_of', 'voc_map_of_subset', 'map_of_subset', 'EVAL_MODES', 'topk_accuracy_of_subset', 'topk_correct']


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if hasattr(x, 'tensor'):  # mmdet box types
        return x.tensor.detach().cpu().numpy()
    return np.asarray(x)


def _offsets(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)


def _concat(parts: list[np.ndarray], width: int | None, dtype) -> np.ndarray:
    if parts:
        return np.concatenate(parts).astype(dtype)
    return np.zeros((0, width) if width else (0, ), dtype)


#: Detection metrics the records reproduce: VOCMetric's two AP modes, CocoMetric's bbox mAP.
EVAL_MODES = ('11points', 'area', 'coco')


@METRICS.register_module()
class PerImageDetRecords(BaseMetric):
    """Write every image's detections and ground truth to ``out_file`` (``.npz``).

    Arrays: ``img_ids`` (N,) str; ``pred_bboxes`` (P, 4) xyxy, ``pred_scores`` (P,),
    ``pred_labels`` (P,), ``pred_offsets`` (N + 1,); ``gt_bboxes`` (G, 4), ``gt_labels``
    (G,), ``gt_ignore`` (G,) bool (VOC ``difficult``), ``gt_offsets`` (N + 1,);
    ``classes`` (C,) str, ``dataset_type`` str, ``eval_mode`` str (``'11points'`` or
    ``'area'`` as the VOCMetric; ``'coco'`` for a CocoMetric), ``max_dets`` int (COCO: the
    detections per image and class counted, 100 as in COCOeval's mAP).
    """

    default_prefix = 'per_image'

    def __init__(self, out_file: str, eval_mode: str = '11points', max_dets: int = 100,
                 collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if eval_mode not in EVAL_MODES:
            raise ValueError(f'eval_mode must be one of {", ".join(EVAL_MODES)}, got {eval_mode!r}')
        self.out_file, self.eval_mode, self.max_dets = str(out_file), eval_mode, int(max_dets)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            gt, ign, pred = sample['gt_instances'], sample.get('ignored_instances'), \
                sample['pred_instances']
            gt_boxes = _np(gt['bboxes']).reshape(-1, 4)
            gt_labels = _np(gt['labels']).reshape(-1)
            if ign is not None and len(_np(ign['labels']).reshape(-1)):
                ign_boxes = _np(ign['bboxes']).reshape(-1, 4)
                ign_labels = _np(ign['labels']).reshape(-1)
            else:
                ign_boxes, ign_labels = np.zeros((0, 4)), np.zeros((0, ), np.int64)
            self.results.append(dict(
                img_id=str(sample.get('img_id', len(self.results))),
                pred_bboxes=_np(pred['bboxes']).reshape(-1, 4).astype(np.float32),
                pred_scores=_np(pred['scores']).reshape(-1).astype(np.float32),
                pred_labels=_np(pred['labels']).reshape(-1).astype(np.int64),
                gt_bboxes=np.concatenate([gt_boxes, ign_boxes]).astype(np.float32),
                gt_labels=np.concatenate([gt_labels, ign_labels]).astype(np.int64),
                gt_ignore=np.r_[np.zeros(len(gt_labels), bool), np.ones(len(ign_labels), bool)]))

    def compute_metrics(self, results: list) -> dict:
        arrays = dict(
            img_ids=np.asarray([r['img_id'] for r in results], dtype=str),
            classes=np.asarray(list(self.dataset_meta.get('classes', ())), dtype=str),
            dataset_type=np.asarray(str(self.dataset_meta.get('dataset_type', ''))),
            eval_mode=np.asarray(self.eval_mode), max_dets=np.asarray(self.max_dets))
        for name, width, dtype in (('pred_bboxes', 4, np.float32), ('pred_scores', None, np.float32),
                                   ('pred_labels', None, np.int64), ('gt_bboxes', 4, np.float32),
                                   ('gt_labels', None, np.int64), ('gt_ignore', None, bool)):
            arrays[name] = _concat([r[name] for r in results], width, dtype)
        arrays['pred_offsets'] = _offsets([r['pred_labels'] for r in results])
        arrays['gt_offsets'] = _offsets([r['gt_labels'] for r in results])
        atomic_save_npz(self.out_file, arrays)
        return {}


@METRICS.register_module()
class PerImageClsRecords(BaseMetric):
    """Write every image's true label, top-k labels and true-class rank to ``out_file``.

    Arrays: ``img_ids`` (N,) str, ``gt_label`` (N,), ``topk_labels`` (N, k) (best first),
    ``gt_rank`` (N,): the number of classes scored strictly higher than the true one.
    Top-k correct iff the true label is among ``topk_labels[:, :k]`` (``torch.topk`` of the
    scores, as mmpretrain's ``Accuracy`` counts, ties included); see :func:`topk_correct`.
    """

    default_prefix = 'per_image'

    def __init__(self, out_file: str, topk: int = 5, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if int(topk) < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        self.out_file, self.topk = str(out_file), int(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            score = torch.as_tensor(sample['pred_score']).float().reshape(-1)
            label = int(torch.as_tensor(sample['gt_label']).reshape(()))
            k = min(self.topk, score.numel())
            top = torch.topk(score, k).indices.numpy()
            top = np.pad(top, (0, self.topk - k), constant_values=-1)
            self.results.append((str(sample.get('img_id', len(self.results))), label, top,
                                 int((score > score[label]).sum())))

    def compute_metrics(self, results: list) -> dict:
        atomic_save_npz(self.out_file, dict(
            img_ids=np.asarray([r[0] for r in results], dtype=str),
            gt_label=np.asarray([r[1] for r in results], np.int64),
            topk_labels=np.stack([r[2] for r in results]).astype(np.int64) if results
            else np.zeros((0, self.topk), np.int64),
            gt_rank=np.asarray([r[3] for r in results], np.int64)))
        return {}


# ------------------------------------------------------------------------ reading
def load_per_image(path: str) -> dict[str, np.ndarray]:
    """The arrays of a per-image ``.npz`` (read with ``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated, other bytes
        raise ValueError(f'{path} is not a per-image record file of the sweep '
                         f'({type(err).__name__}: {err})') from None


def image_slices(records: dict, name: str) -> list[np.ndarray]:
    """Per-image pieces of the concatenated array ``name`` (``pred_*`` or ``gt_*``)."""
    offsets = records[name.split('_')[0] + '_offsets']
    return [records[name][offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def detection_records_of(records: dict, iou_thr: float = 0.5) -> DetectionRecords:
    """The per-image detection ``records`` as their metric's matching sees them
    (:class:`fq_det.evaluation.detection_ap.DetectionRecords`: TP/FP flags per detection,
    ground-truth count per image and class): mmdet's ``tpfp_default`` rule at ``iou_thr``
    for VOC records, pycocotools' at its 10 thresholds for COCO ones (``eval_mode='coco'``)."""
    names = ('pred_bboxes', 'pred_scores', 'pred_labels', 'gt_bboxes', 'gt_labels', 'gt_ignore')
    images = [dict(zip(('bboxes', 'scores', 'labels', 'gt_bboxes', 'gt_labels', 'gt_ignore'),
                       parts)) for parts in zip(*(image_slices(records, n) for n in names))]
    if str(records.get('eval_mode', '11points')) == 'coco':
        return coco_detection_records(images, num_classes=len(records['classes']),
                                      max_dets=int(records.get('max_dets', 100)))
    return detection_records(images, num_classes=len(records['classes']), iou_thr=iou_thr)


def _subset_weights(image_indices: Sequence[int] | np.ndarray, num_images: int) -> np.ndarray:
    """``(1, num_images)``: how often each image is in ``image_indices``."""
    idx = np.asarray(image_indices, dtype=np.int64).reshape(-1)
    if not idx.size:
        raise ValueError('image_indices is empty')
    if idx.min() < 0 or idx.max() >= num_images:
        raise ValueError(f'image_indices must lie in [0, {num_images}), got {idx.min()}..'
                         f'{idx.max()}')
    return np.bincount(idx, minlength=num_images)[None].astype(np.float64)


def voc_map_of_subset(records: dict, image_indices: Sequence[int] | np.ndarray,
                      iou_thr: float = 0.5) -> float:
    """VOC mAP of the images ``image_indices`` (repeats allowed, e.g. a bootstrap sample).

    The images enter as weights (how often each is drawn) into
    :func:`fq_det.evaluation.detection_ap.voc_ap50`, the route of every bootstrap, with the
    records' ``eval_mode``; with all images and ``iou_thr=0.5`` it equals ``VOCMetric``'s
    ``pascal_voc/mAP`` (tested against it, on subsets too).
    """
    weights = _subset_weights(image_indices, len(records['img_ids']))
    mode = str(records['eval_mode'])
    return float(voc_ap50(detection_records_of(records, iou_thr), weights, mode=mode)[0])


def map_of_subset(records: dict, image_indices: Sequence[int] | np.ndarray,
                  iou: str | float = 'all') -> float:
    """The records' own metric on the images ``image_indices`` (repeats allowed): COCO bbox
    mAP (``iou='all'``) or AP at one threshold (``iou=0.5``) for COCO records, equal to
    ``CocoMetric``'s ``coco/bbox_mAP`` / ``coco/bbox_mAP_50`` on all images; VOC mAP
    (:func:`voc_map_of_subset`) for VOC records."""
    mode = str(records['eval_mode'])
    weights = _subset_weights(image_indices, len(records['img_ids']))
    if mode == 'coco':
        return float(coco_map(detection_records_of(records), weights, iou=iou)[0])
    return float(detection_map(detection_records_of(records), weights, mode=mode)[0])


def topk_accuracy_of_subset(records: dict, image_indices: Sequence[int] | np.ndarray,
                            k: int = 1) -> float:
    """Top-k accuracy (%) of the images ``image_indices``, as mmpretrain's ``Accuracy``
    computes it (:func:`fq_det.evaluation.statistics.top1` of the top-k flags)."""
    weights = _subset_weights(image_indices, len(records['img_ids']))
    return float(top1(topk_correct(records, k), weights)[0])


def topk_correct(records: dict, k: int = 1) -> np.ndarray:
    """Per image: is the true label among the ``k`` best-scored (mmpretrain's rule)?"""
    return (records['topk_labels'][:, :k] == records['gt_label'][:, None]).any(axis=1)
