"""Robustness sweep: a model's metric on clean and distorted test sets.

:func:`run_sweep` (``task='detection'`` or ``'classification'``, each with its
:data:`SWEEP_PRESETS` entry) builds the runner and loads the checkpoint once, then for clean and every ``(distortion, severity,
seed)`` rebuilds only the test dataloader, with ``Distort`` inserted by
:func:`fq_det.datasets.distortion_route.insert_distort`, and evaluates with the config's
own test loop and evaluator (``VOCMetric`` for VOC, mmpretrain's ``Accuracy`` for classification).

Every finished evaluation is merged into ``partial.json`` under a file lock and
``results.json`` is rewritten from it (:mod:`fq_det.evaluation.sweep_store`), so an
interrupted sweep resumes where it stopped, concurrent sweeps into one out-dir lose
nothing, and results of another checkpoint, config or data set are never reused.
``save_per_image=True`` also writes ``per_image/<clean|distortion_sN>.npz`` for every
evaluation (:mod:`fq_det.evaluation.per_image`).

Summary, as in MMDetection's robustness benchmark (``m`` the metric, ``D`` the
distortions, ``S`` the severities; with several seeds ``m_{d,s}`` is the mean over seeds)::

    P   = m_clean
    mPC = 1 / (|D| |S|) * sum_{d in D, s in S} m_{d,s}
    rPC = mPC / P
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
import math
import os.path as osp
import sys
from typing import Callable, Iterable, Sequence

import numpy as np

from mmengine.config import Config
from mmengine.dist import broadcast_object_list, is_distributed, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import LOOPS
from mmengine.runner import Runner, TestLoop
from mmengine.utils import ProgressBar

from fq_det.classification.tables import METRIC_KEY as TABLE3_METRIC_KEY
from fq_det.classification.tables import format_classification_table
from fq_det.datasets.distortion_route import TASKS, insert_distort
from fq_det.datasets.distortions import SEVERITIES, check_severity, resolve_preset
from fq_det.engine.runner import build_runner
from .corrupted_sets import export_identity, open_corrupted_set
from .summary import summarize
from fq_det.utils.io import atomic_write_text
from .sweep_store import (PER_IMAGE_DIR, RESULTS_JSON, RESULTS_MD, StaleResultsError,
                          SweepStore, check_out_dir, record_id, resume_key)

__all__ = ['run_sweep', 'SweepPreset', 'SWEEP_PRESETS', 'format_results_table',
           'insert_distort', 'resolve_distortions', 'assemble_results', 'per_image_file',
           'KNOWN_METRIC_KEYS']

#: Metric keys looked for, in order, when ``metric_key`` is not given.
KNOWN_METRIC_KEYS = ('pascal_voc/mAP', 'coco/bbox_mAP', 'coco/segm_mAP', 'accuracy/top1')


# ------------------------------------------------------------------ config surgery
def _pipeline_holders(dataset_cfg: dict) -> list[dict]:
    """The dataset configs (inside wrappers) that own a ``pipeline``."""
    if 'pipeline' in dataset_cfg:
        return [dataset_cfg]
    if 'dataset' in dataset_cfg:
        return _pipeline_holders(dataset_cfg['dataset'])
    if 'datasets' in dataset_cfg:
        return [h for d in dataset_cfg['datasets'] for h in _pipeline_holders(d)]
    raise ValueError(f'Cannot find the test pipeline in test_dataloader.dataset '
                     f'(type {dataset_cfg.get("type")!r}): no pipeline/dataset/datasets key')


def _distorted_dataloader_cfg(dataloader_cfg: dict, distortion: str | None, severity: int,
                              seed: int, task: str = 'detection',
                              data_root: str | None = None) -> dict:
    """The test dataloader with ``Distort`` inserted, or, with ``data_root`` (an exported
    pair's folder, :mod:`~fq_det.evaluation.corrupted_sets`), reading the data there."""
    cfg = copy.deepcopy(dataloader_cfg)
    if data_root is not None:
        for holder in _pipeline_holders(cfg['dataset']):
            holder['data_root'] = data_root
    elif distortion is not None:
        for holder in _pipeline_holders(cfg['dataset']):
            holder['pipeline'] = insert_distort(holder['pipeline'], distortion, severity, seed,
                                                task=task)
    return cfg


def resolve_distortions(distortions: str | Iterable[str]) -> tuple[str, ...]:
    """Presets expanded (``'all'``/``'paper'`` -> :data:`DISTORTIONS`, ``'benchmark'``,
    ``'benchmark-extra'``; see :data:`~fq_det.datasets.distortions.PRESETS`); otherwise
    the checked names, in order."""
    return resolve_preset(distortions if isinstance(distortions, str) else tuple(distortions))


# ---------------------------------------------------------------------- results
def _pick_metric_key(metrics: dict, metric_key: str | None) -> str:
    if metric_key is not None:
        if metrics and metric_key not in metrics:
            raise KeyError(f'metric_key {metric_key!r} is not among the evaluator\'s metrics: '
                           f'{", ".join(metrics)}')
        return metric_key
    for key in KNOWN_METRIC_KEYS:
        if key in metrics:
            return key
    if not metrics:
        raise ValueError('The evaluator returned no metrics')
    return next(iter(metrics))


def _fmt(value: float | None) -> str:
    return '-' if value is None or math.isnan(value) else f'{value:.3f}'


def format_results_table(results: dict) -> str:
    """Markdown: one row per distortion, one column per severity, the row mean; then P/mPC/rPC."""
    key = results['metric_key']
    distorted = results.get('distorted', {})
    severities = sorted({int(s) for by_sev in distorted.values() for s in by_sev}) \
        or list(SEVERITIES)
    summary = results.get('summary') or summarize(results)
    lines = [f'Robustness of `{osp.basename(str(results.get("config", "")))}` '
             f'(checkpoint `{results.get("checkpoint", "")}`), metric `{key}`', '',
             '| distortion | ' + ' | '.join(f'sev. {s}' for s in severities) + ' | mean |',
             '|---|' + '---:|' * (len(severities) + 1)]
    for name, by_sev in distorted.items():
        cells = [_fmt(by_sev.get(str(s), {}).get(key)) for s in severities]
        lines.append(f'| {name} | ' + ' | '.join(cells)
                     + f' | {_fmt(summary["per_distortion"].get(name))} |')
    rpc = summary['rPC']
    lines += ['', '| summary | value |', '|---|---:|',
              f'| P (clean) | {_fmt(summary["P"])} |',
              f'| mPC (mean over distortions and severities) | {_fmt(summary["mPC"])} |',
              f'| rPC = mPC / P | {"-" if math.isnan(rpc) else f"{100 * rpc:.1f} %"} |']
    return '\n'.join(lines) + '\n'


def _to_jsonable(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue  # non-scalar entries (tables, arrays) are not part of the schema
    return out


# ------------------------------------------------------------------------- runner
class _SweepProgressHook(Hook):
    """A progress bar over the test set of each pair (main process only)."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.bar = None

    def before_test_epoch(self, runner) -> None:
        if is_main_process():
            self.bar = ProgressBar(len(runner.test_loop.dataloader.dataset), file=sys.stdout)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.bar is not None:
            n = len(outputs) if outputs is not None else 1
            world = getattr(runner, 'world_size', 1) or 1
            for _ in range(min(n * world, self.bar.task_num - self.bar.completed)):
                self.bar.update()

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar = None


def per_image_file(out_dir: str, distortion: str | None, severity: int, seed: int) -> str:
    """``<out_dir>/per_image/clean.npz``, ``<distortion>_s<severity>.npz`` (seed 0) or
    ``<distortion>_s<severity>_seed<seed>.npz``."""
    name = 'clean' if distortion is None else \
        f'{distortion}_s{severity}' + (f'_seed{seed}' if seed else '')
    return osp.join(str(out_dir), PER_IMAGE_DIR, name + '.npz')


def _metric_cfgs(evaluator_cfg) -> list[dict]:
    if isinstance(evaluator_cfg, dict) and 'metrics' in evaluator_cfg:
        evaluator_cfg = evaluator_cfg['metrics']
    return [copy.deepcopy(dict(m)) for m in (evaluator_cfg if isinstance(evaluator_cfg, (list, tuple))
                                           else [evaluator_cfg])]


def _per_image_metric(task: str, metrics: list[dict], out_file: str) -> dict:
    """The per-image record metric for ``task``, matched to the config's own metric."""
    names = [str(m.get('type', '')).split('.')[-1] for m in metrics]
    if task == 'detection':
        voc = [m for m, n in zip(metrics, names) if n == 'VOCMetric']
        coco = [m for m, n in zip(metrics, names) if n == 'CocoMetric']
        if coco and not voc:  # COCOeval's mAP counts 100 detections per image and class
            return dict(type='mmdet.PerImageDetRecords', out_file=out_file, eval_mode='coco',
                        max_dets=100)
        return dict(type='mmdet.PerImageDetRecords', out_file=out_file,
                    eval_mode=voc[0].get('eval_mode', '11points') if voc else '11points')
    topk = [k for m, n in zip(metrics, names) if n == 'Accuracy'
            for k in (m.get('topk', (1, 5)) if isinstance(m.get('topk', (1, 5)), (list, tuple))
                      else (m['topk'], ))]
    return dict(type='mmdet.PerImageClsRecords', out_file=out_file, topk=max(topk or [5]))


def _evaluate(runner: Runner, cfg: Config, distortion: str | None, severity: int, seed: int,
              task: str = 'detection', per_image: str | None = None,
              data_root: str | None = None) -> dict:
    """Evaluate with the config's test loop on a dataloader distorted as asked (or reading
    an exported corrupted set at ``data_root``).

    With ``per_image`` (a file path) a per-image record metric is appended to the
    evaluator; the loop itself is the config's.
    """
    dataloader = _distorted_dataloader_cfg(cfg.test_dataloader, distortion, severity, seed, task,
                                           data_root)
    evaluator = copy.deepcopy(cfg.test_evaluator)
    if per_image is not None:
        metrics = _metric_cfgs(evaluator)
        evaluator = metrics + [_per_image_metric(task, metrics, per_image)]
    loop_cfg = copy.deepcopy(dict(cfg.get('test_cfg') or {}))
    args = dict(runner=runner, dataloader=dataloader, evaluator=evaluator)
    loop = LOOPS.build(loop_cfg, default_args=args) if 'type' in loop_cfg else \
        TestLoop(**loop_cfg, **args)
    # The runner's hooks and log processor read the current loop through runner.test_loop.
    runner._test_loop = loop
    return loop.run()


def assemble_results(records: dict[str, dict], *, config: str, checkpoint: str, key: dict,
                     distortions: Sequence[str], severities: Sequence[int],
                     seeds: Sequence[int], metric_key: str | None) -> dict:
    """The results dict (schema in ``docs/distortions.md``) from the stored records.

    Every (distortion, severity) with a record for each of ``seeds`` is included (pairs of
    a concurrent sweep too), the requested distortions first; values are means over the
    seeds, ``distorted_std`` their standard deviations (ddof 0), ``per_seed`` the values.
    """
    seeds = [int(s) for s in seeds]
    found = {}
    for rid in records:
        name, sev, _ = rid.split('/')
        if name != 'clean':
            found.setdefault(name, set()).add(int(sev))
    names = list(distortions) + [d for d in found if d not in distortions]
    distorted, distorted_std, per_seed = {}, {}, {}
    for d in names:
        for s in sorted(set(severities) | found.get(d, set())):
            runs = [records.get(record_id(d, s, seed)) for seed in seeds]
            if any(r is None for r in runs):
                continue
            keys = [k for k in runs[0] if all(k in r for r in runs)]
            distorted.setdefault(d, {})[str(s)] = {k: float(np.mean([r[k] for r in runs]))
                                                   for k in keys}
            distorted_std.setdefault(d, {})[str(s)] = {k: float(np.std([r[k] for r in runs]))
                                                       for k in keys}
            per_seed.setdefault(d, {})[str(s)] = {k: [float(r[k]) for r in runs] for k in keys}
    clean = records.get(record_id(None, 0, 0), {})
    some = clean or next(iter(records.values()), {})
    results = dict(config=config, checkpoint=osp.abspath(checkpoint),
                   metric_key=_pick_metric_key(some, metric_key) if some else metric_key,
                   seeds=seeds, resume_key=key, clean=clean, distorted=distorted,
                   distorted_std=distorted_std, per_seed=per_seed)
    results['summary'] = summarize(results) if results['metric_key'] else {}
    return results


@dataclass(frozen=True)
class SweepPreset:
    """What differs between the tasks' sweeps: the metric summarised (None: the first of
    :data:`KNOWN_METRIC_KEYS` the evaluator returns), whether the checkpoint must match the
    model exactly, and the Markdown table of ``results.md``."""
    metric_key: str | None
    strict_load: bool
    format_table: Callable[[dict], str]
    #: ``results.json`` names the model (the table's row label)
    names_model: bool = False


SWEEP_PRESETS = {
    'detection': SweepPreset(None, False, format_results_table),
    'classification': SweepPreset(TABLE3_METRIC_KEY, True, format_classification_table,
                                  names_model=True),
}


def run_sweep(task: str, cfg: Config | str, checkpoint: str, out_dir: str, *,
              distortions: str | Iterable[str] = 'all',
              severities: Iterable[int] = SEVERITIES, seeds: Iterable[int] = (0, ),
              metric_key: str | None = None, overwrite: bool = False,
              save_per_image: bool = False, corrupted_root: str | None = None,
              model_name: str | None = None) -> dict:
    """Evaluate ``checkpoint`` on clean and distorted test data; write results.json/.md.

    Args:
        task: ``'detection'`` or ``'classification'``: where ``Distort`` is inserted and
            the task's :data:`SWEEP_PRESETS` (metric, strict load, table).
        cfg: the model's config (object or path); ``launcher``, ``cfg_options`` and the
            like are applied by the caller.
        checkpoint: the weights, loaded once for the whole sweep.
        out_dir: where partial.json, results.json, results.md, per_image/ and the
            runner's logs go. Finished pairs of the same resume key are skipped; pairs of
            another key raise :class:`~fq_det.evaluation.sweep_store.StaleResultsError`.
        distortions: a preset (``'all'``, ``'paper'``, ``'benchmark'``,
            ``'benchmark-extra'``) or names from ``DISTORTIONS``, ``c:*`` (or ``ic:*``).
        severities: subset of 1..5.
        seeds: distortion seeds; several give means and standard deviations.
        metric_key: the metric summarised (default: the preset's).
        overwrite: delete the out-dir's previous results instead of resuming them.
        save_per_image: also write ``per_image/<clean|distortion_sN>.npz`` per pair.
        corrupted_root: read every (distortion, severity) from this export
            (``tools/misc/export_corrupted.py``; one seed, detection) instead of
            distorting on the fly; the same numbers, a resume key of its own.
        model_name: the ``model`` entry of a classification results.json (default: the
            config's file name).

    Returns:
        The results dict (schema in ``docs/distortions.md``).
    """
    if task not in TASKS:
        raise ValueError(f'Unknown task {task!r}; valid choices: {", ".join(TASKS)}')
    preset = SWEEP_PRESETS[task]
    out_dir, checkpoint = str(out_dir), str(checkpoint)
    cfg = Config.fromfile(cfg) if isinstance(cfg, str) else copy.deepcopy(cfg)
    distortions, severities, seeds = _conditions(distortions, severities, seeds)
    check_out_dir(out_dir)  # before any work
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {checkpoint}')
    key = resume_key(task, cfg, checkpoint)
    exported = _exported_roots(corrupted_root, cfg, task, distortions, severities, seeds)
    if corrupted_root is not None:
        key['corrupted_root'] = export_identity(corrupted_root)
    store = SweepStore(out_dir, key, overwrite=overwrite and is_main_process()).open()
    metric_key = metric_key or preset.metric_key
    _check_metric_key(store, metric_key, out_dir)
    extra = dict(model=model_name or osp.splitext(osp.basename(cfg.filename or 'model'))[0]
                 ) if preset.names_model else {}
    writer = _ResultsWriter(out_dir, dict(config=cfg.filename or '', checkpoint=checkpoint,
                                          key=key, distortions=distortions,
                                          severities=severities, seeds=seeds,
                                          metric_key=metric_key), extra)
    pairs = [(None, 0, 0)] + [(d, s, seed) for seed in seeds for d in distortions
                              for s in severities]
    _evaluate_pairs(pairs, cfg, checkpoint, out_dir, task, store, writer.write, exported,
                    save_per_image, preset.strict_load, len(seeds) > 1)
    return writer.finish(store, preset.format_table)


def _conditions(distortions, severities, seeds) -> tuple[tuple, tuple, tuple]:
    """The checked ``(distortions, severities, seeds)`` of a sweep."""
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError('need at least one seed')
    return (resolve_distortions(distortions), tuple(check_severity(s) for s in severities),
            seeds)


class _ResultsWriter:
    """``results.json`` (rewritten from the store's records after every pair) and, at the
    end, ``results.md``."""

    def __init__(self, out_dir: str, settings: dict, extra: dict) -> None:
        self.out_dir, self.settings, self.extra = out_dir, settings, extra

    def assemble(self, records: dict) -> dict:
        return dict(assemble_results(records, **self.settings), **self.extra)

    def write(self, records: dict) -> None:
        atomic_write_text(osp.join(self.out_dir, RESULTS_JSON),
                          json.dumps(self.assemble(records), indent=2))

    def finish(self, store: SweepStore, format_table: Callable[[dict], str]) -> dict:
        """The final results (printed as ``format_table`` gives them, also in results.md)."""
        results = self.assemble(store.refresh() if is_main_process() else store.records)
        if results['metric_key'] is None:
            raise RuntimeError(f'{self.out_dir} has no metric yet; nothing was evaluated')
        table = format_table(results)
        if is_main_process():
            with store.locked():
                self.write(store.records)
                atomic_write_text(osp.join(self.out_dir, RESULTS_MD), table)
        _print(table)
        return results


def _check_metric_key(store: SweepStore, metric_key: str | None, out_dir: str) -> None:
    """Refuse a store whose clean pair lacks the metric asked for."""
    clean_record = store.records.get(record_id(None, 0, 0))
    if metric_key is not None and clean_record and metric_key not in clean_record:
        raise StaleResultsError(f'{out_dir} holds metrics {", ".join(clean_record)}, not '
                                f'{metric_key!r}; its pairs are not reused: start fresh with '
                                '--overwrite (overwrite=True) or use another out_dir')


def _evaluate_pairs(pairs: list[tuple], cfg: Config, checkpoint: str, out_dir: str, task: str,
                    store: SweepStore, write_results: Callable[[dict], None], exported: dict,
                    save_per_image: bool, strict_load: bool, several_seeds: bool) -> None:
    """Evaluate every ``(distortion, severity, seed)`` pair not yet in the store; the runner
    is built and the checkpoint loaded once, at the first pair that needs it."""
    runner = None
    for i, (distortion, severity, seed) in enumerate(pairs, start=1):
        label = 'clean' if distortion is None else \
            f'{distortion} {severity}' + (f' seed {seed}' if several_seeds else '')
        rid = record_id(distortion, severity, seed)
        per_image = per_image_file(out_dir, distortion, severity, seed) if save_per_image else None
        records = store.refresh()  # a concurrent sweep may have finished this pair
        if _rank0_decides(rid in records and (per_image is None or osp.isfile(per_image))):
            _print(f'pair {i}/{len(pairs)}: {label} (in {RESULTS_JSON}, skipped)')
            continue
        if runner is None:
            runner = _sweep_runner(cfg, checkpoint, out_dir, strict_load)
        data_root = exported.get((distortion, severity))
        _print(f'pair {i}/{len(pairs)}: {label}' + (f' (from {data_root})' if data_root else ''))
        metrics = _to_jsonable(_evaluate(runner, cfg, distortion, severity, seed, task, per_image,
                                         data_root))
        if is_main_process():
            store.add(rid, metrics, write_results)
        else:
            store.records[rid] = metrics
    if runner is not None:
        runner.call_hook('after_run')


def _sweep_runner(cfg: Config, checkpoint: str, out_dir: str, strict_load: bool) -> Runner:
    """The config's runner in ``out_dir`` with ``checkpoint`` loaded and a progress bar."""
    cfg.work_dir = out_dir
    cfg.load_from = None
    cfg.resume = False
    runner = build_runner(cfg)
    runner.register_hook(_SweepProgressHook())
    runner.call_hook('before_run')
    runner.load_checkpoint(checkpoint, map_location='cpu', strict=strict_load)
    return runner


def _exported_roots(corrupted_root: str | None, cfg: Config, task: str,
                    distortions: Sequence[str], severities: Sequence[int],
                    seeds: Sequence[int]) -> dict[tuple[str, int], str]:
    """Each pair's folder in the export (checked against ``cfg``), or ``{}``."""
    if corrupted_root is None:
        return {}
    if task != 'detection' or len(seeds) != 1:
        raise ValueError('An exported corrupted set serves a detection sweep of one seed; got '
                         f'task {task!r} with seeds {list(seeds)}')
    return open_corrupted_set(corrupted_root, cfg, distortions, severities, seeds[0])


def _rank0_decides(value):
    """``value`` as the main process sees it, on every process (all ranks skip the same pairs)."""
    if not is_distributed():
        return value
    box = [value]
    broadcast_object_list(box)
    return box[0]


def _print(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)
