"""Per-image records of a study run's sweep, in the form the image bootstrap needs.

The sweeps write ``<sweep dir>/per_image/<condition>.npz`` (``clean``, ``<distortion>_s<N>``)
when asked to keep per-image records. For each run this module returns the test images'
ids, one record per condition, and the metric as a function of (record, bootstrap
weights): top-1 accuracy for classification, VOC AP50 for detection
(:mod:`fq_det.evaluation.statistics`).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from fq_det.evaluation import statistics as st


def condition_name(distortion: str | None, severity: int = 0) -> str:
    return 'clean' if distortion is None else f'{distortion}_s{severity}'


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f'no per-image records: {path}')
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _split(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def _detection_record(raw: dict, num_classes: int) -> st.DetectionRecords:
    preds = zip(_split(raw['pred_bboxes'], raw['pred_offsets']),
                _split(raw['pred_scores'], raw['pred_offsets']),
                _split(raw['pred_labels'], raw['pred_offsets']))
    gts = zip(_split(raw['gt_bboxes'], raw['gt_offsets']),
              _split(raw['gt_labels'], raw['gt_offsets']),
              _split(raw['gt_ignore'], raw['gt_offsets']))
    images = [dict(bboxes=b, scores=s, labels=l, gt_bboxes=gb, gt_labels=gl, gt_ignore=gi)
              for (b, s, l), (gb, gl, gi) in zip(preds, gts)]
    return st.detection_records(images, num_classes)


def load_run_records(study, variant: str, seed: int) -> dict:
    """``dict(image_ids, clean, distorted={d: {s: record}}, metric=f(record, weights))``."""
    folder = study.run_dir(variant, seed) / 'sweep' / 'per_image'
    raws = {None: _load(folder / f'{condition_name(None)}.npz')}
    for d in study.distortions:
        for s in study.severities:
            raws[(d, s)] = _load(folder / f'{condition_name(d, s)}.npz')
    ids = raws[None]['image_ids']
    for key, raw in raws.items():
        if not np.array_equal(raw['image_ids'], ids):
            raise ValueError(f'{folder}: condition {key} was evaluated on other images than clean')
    if study.task == 'detection':
        num_classes = int(max(int(r['num_classes']) for r in raws.values()))
        records = {k: _detection_record(r, num_classes) for k, r in raws.items()}
        metric = st.voc_ap50
    else:
        records = {k: (r['pred_label'] == r['gt_label']) for k, r in raws.items()}
        metric = partial(_top1)
    distorted = {}
    for (d, s), rec in ((k, v) for k, v in records.items() if k is not None):
        distorted.setdefault(d, {})[s] = rec
    return dict(image_ids=ids, clean=records[None], distorted=distorted, metric=metric)


def _top1(correct: np.ndarray, weights: np.ndarray | None = None):
    return st.top1(correct, weights)
