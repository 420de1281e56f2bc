"""Per-image records of a sweep, in the form the image bootstrap needs.

A sweep run with ``save_per_image=True`` writes ``<sweep dir>/per_image/<condition>.npz``
(:mod:`fq_det.evaluation.per_image`). :func:`load_sweep_records` returns the test images'
ids, one record per condition and the metric as a function of (record, bootstrap
weights): top-1 accuracy for classification, VOC AP50 for detection (COCO bbox mAP
for records of a ``CocoMetric`` sweep; :mod:`fq_det.evaluation.detection_ap`). :func:`bootstrap_differences` resamples the test
images of several models evaluated on the same images and returns the percentile
interval of each summary row's difference to a reference model.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from fq_det.evaluation import detection_ap
from fq_det.evaluation import statistics as st
from fq_det.evaluation.per_image import detection_records_of, load_per_image, topk_correct
from fq_det.evaluation.robustness import per_image_file
from fq_det.evaluation.summary import performance_rows
from fq_det.studies.errors import StudyError
from fq_det.utils.io import atomic_save_npz

__all__ = ['load_sweep_records', 'save_compact_records', 'load_compact_records',
           'bootstrap_differences', 'sweep_bootstrap']


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
    mode = str(raws[None].get('eval_mode', '11points'))
    if task == 'detection':
        records = {k: detection_records_of(r) for k, r in raws.items()}
    else:
        records = {k: topk_correct(r, 1) for k, r in raws.items()}
    distorted = {}
    for (d, s), rec in ((k, v) for k, v in records.items() if k is not None):
        distorted.setdefault(d, {})[s] = rec
    return dict(image_ids=ids, clean=records[None], distorted=distorted,
                metric=_metric_of(task, mode), eval_mode=mode)


def _metric_of(task: str, eval_mode: str = '11points') -> Callable:
    if task == 'detection':
        return lambda rec, w=None: detection_ap.detection_map(rec, w, mode=eval_mode)
    return st.top1


def save_compact_records(records: dict, task: str, path: str | Path) -> Path:
    """What the bootstrap needs of :func:`load_sweep_records`, small enough to commit.

    Classification: the top-1 flags, bit-packed. Detection: per detection its image,
    class, score and TP/FP flags, and the ground-truth count per image and class.
    """
    arrays = dict(image_ids=np.asarray(records['image_ids'], dtype=str),
                  task=np.asarray(task), eval_mode=np.asarray(records.get('eval_mode', '11points')))
    conditions = {'clean': records['clean']}
    conditions.update({f'{d}_s{s}': rec for d, by in records['distorted'].items()
                       for s, rec in by.items()})
    for name, rec in conditions.items():
        if task == 'detection':
            arrays[f'{name}/image'] = rec.image.astype(np.int32)
            arrays[f'{name}/label'] = rec.label.astype(np.int16)
            arrays[f'{name}/score'] = rec.score.astype(np.float32)
            arrays[f'{name}/tp'] = rec.tp.astype(np.uint8)
            arrays[f'{name}/fp'] = rec.fp.astype(np.uint8)
            arrays[f'{name}/num_gt'] = rec.num_gt.astype(np.uint16)
        else:
            arrays[f'{name}/correct'] = np.packbits(np.asarray(rec, dtype=bool))
    atomic_save_npz(path, arrays, compressed=True)
    return Path(path)


def load_compact_records(path: str | Path, distortions: Sequence[str],
                         severities: Sequence[int]) -> dict:
    """:func:`save_compact_records`' file back in :func:`load_sweep_records`' form.

    Raises ``FileNotFoundError`` when there is no file or it lacks a condition, and
    :class:`~fq_det.studies.errors.StudyError` naming the file when it is not one
    :func:`save_compact_records` wrote (truncated, other bytes, object arrays).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f'no per-image records: {path}')
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        task, ids = str(arrays['task']), arrays['image_ids']
        str(arrays['eval_mode'])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise StudyError(f'{path} is not a records file of the study ({type(err).__name__}: '
                         f'{err}); delete it: `run` writes it again from the run\'s '
                         'sweep/per_image/') from None

    def record(name: str):
        if f'{name}/correct' not in arrays and f'{name}/image' not in arrays:
            raise FileNotFoundError(f'{path} has no records of {name}')
        if task == 'detection':
            return detection_ap.DetectionRecords(
                image=arrays[f'{name}/image'].astype(np.int64),
                label=arrays[f'{name}/label'].astype(np.int64),
                score=arrays[f'{name}/score'].astype(np.float64),
                tp=arrays[f'{name}/tp'].astype(np.float64),
                fp=arrays[f'{name}/fp'].astype(np.float64),
                num_gt=arrays[f'{name}/num_gt'].astype(np.int64))
        return np.unpackbits(arrays[f'{name}/correct'], count=len(ids)).astype(bool)

    return dict(image_ids=ids, clean=record('clean'),
                distorted={d: {s: record(f'{d}_s{s}') for s in severities} for d in distortions},
                metric=_metric_of(task, str(arrays['eval_mode'])),
                eval_mode=str(arrays['eval_mode']))


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


def sweep_bootstrap(sweep_dirs: Mapping[str, str | Path], reference: str, task: str,
                    distortions: Sequence[str], severities: Sequence[int], seed: int = 0,
                    replicates: int = 1000, confidence: float = 0.95,
                    seen: Sequence[str] = ()) -> dict[str, dict[str, dict]]:
    """Image-bootstrap intervals of each model's summary rows minus the reference's, from
    sweeps run with ``save_per_image=True`` on the same test images (one run each)."""
    models = {name: load_sweep_records(d, task, distortions, severities, seed)
              for name, d in sweep_dirs.items()}
    return bootstrap_differences(models, reference,
                                 lambda c, d: performance_rows(c, d, tuple(seen)),
                                 replicates=replicates, seed=seed, confidence=confidence)
