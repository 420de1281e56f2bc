"""Per-image records of a sweep, in the form the image bootstrap needs.

A sweep run with ``save_per_image=True`` writes ``<sweep dir>/per_image/<condition>.npz``
(:mod:`fq_det.evaluation.per_image`). :func:`load_sweep_records` returns the test images'
ids, one record per condition and the metric as a function of (record, bootstrap
weights): top-1 accuracy for classification, VOC AP50 for detection
(:mod:`fq_det.evaluation.statistics`). :func:`bootstrap_differences` resamples the test
images of several models evaluated on the same images and returns the percentile
interval of each summary row's difference to a reference model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from fq_det.evaluation import statistics as st
from fq_det.evaluation.per_image import load_per_image
from fq_det.evaluation.robustness import per_image_file

__all__ = ['load_sweep_records', 'bootstrap_differences']


def _split(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def _detection_record(raw: dict) -> st.DetectionRecords:
    po, go = raw['pred_offsets'], raw['gt_offsets']
    images = [dict(bboxes=b, scores=s, labels=lab, gt_bboxes=gb, gt_labels=gl, gt_ignore=gi)
              for b, s, lab, gb, gl, gi in zip(
                  _split(raw['pred_bboxes'], po), _split(raw['pred_scores'], po),
                  _split(raw['pred_labels'], po), _split(raw['gt_bboxes'], go),
                  _split(raw['gt_labels'], go), _split(raw['gt_ignore'], go))]
    return st.detection_records(images, num_classes=len(raw['classes']))


def load_sweep_records(sweep_dir: str | Path, task: str, distortions: Sequence[str],
                       severities: Sequence[int], seed: int = 0) -> dict:
    """``dict(image_ids, clean, distorted={d: {s: record}}, metric=f(record, weights))``.

    Raises ``FileNotFoundError`` when the sweep kept no per-image records for a pair.
    """
    files = {None: per_image_file(str(sweep_dir), None, 0, seed)}
    files.update({(d, s): per_image_file(str(sweep_dir), d, s, seed)
                  for d in distortions for s in severities})
    raws = {}
    for key, path in files.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f'no per-image records for {key or "clean"}: {path}')
        raws[key] = load_per_image(path)
    ids = raws[None]['img_ids']
    for key, raw in raws.items():
        if not np.array_equal(raw['img_ids'], ids):
            raise ValueError(f'{sweep_dir}: {key} was evaluated on other images than clean')
    if task == 'detection':
        mode = str(raws[None].get('eval_mode', '11points'))
        records = {k: _detection_record(r) for k, r in raws.items()}
        metric: Callable = lambda rec, w=None: st.voc_ap50(rec, w, mode=mode)  # noqa: E731
    else:
        records = {k: r['gt_rank'] < 1 for k, r in raws.items()}  # top-1 correct
        metric = st.top1
    distorted = {}
    for (d, s), rec in ((k, v) for k, v in records.items() if k is not None):
        distorted.setdefault(d, {})[s] = rec
    return dict(image_ids=ids, clean=records[None], distorted=distorted, metric=metric)


def bootstrap_differences(models: Mapping[str, dict], reference: str, rows_of: Callable,
                          replicates: int = 1000, seed: int = 0,
                          confidence: float = 0.95) -> dict[str, dict[str, dict]]:
    """``{model: {row: interval dict}}`` of ``row(model) - row(reference)`` over images.

    ``models`` maps names to :func:`load_sweep_records` results on the same test images;
    ``rows_of(clean, distorted)`` turns per-condition values (floats or replicate arrays)
    into summary rows. One set of multinomial image weights serves every model and
    condition (paired).
    """
    ids = models[reference]['image_ids']
    for name, m in models.items():
        if not np.array_equal(m['image_ids'], ids):
            raise ValueError(f'{name} and {reference} were evaluated on different test images; '
                             'the bootstrap pairs them image by image')
    weights = st.bootstrap_weights(len(ids), replicates, seed=seed)

    def rows(m: dict, w: np.ndarray | None) -> dict:
        return rows_of(m['metric'](m['clean'], w),
                       {d: {s: m['metric'](rec, w) for s, rec in by.items()}
                        for d, by in m['distorted'].items()})

    ref_rep, ref_point = rows(models[reference], weights), rows(models[reference], None)
    out = {}
    for name, m in models.items():
        if name == reference:
            continue
        rep, point = rows(m, weights), rows(m, None)
        out[name] = {row: st.percentile_interval(rep[row] - ref_rep[row],
                                                 point[row] - ref_point[row], confidence).as_dict()
                     for row in rep if row in ref_rep}
    return out
