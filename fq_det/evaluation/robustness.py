"""Robustness sweep: a detector's metric on clean and distorted test sets.

:func:`run_robustness_sweep` builds the runner (and loads the checkpoint) once, then
for clean and every ``(distortion, severity)`` pair rebuilds only the test
dataloader, with :class:`fq_det.datasets.transforms.Distort` inserted into a copy of
the config's test pipeline, and evaluates with the config's own test loop and
evaluator (``VOCMetric`` for VOC). ``results.json`` is rewritten after every pair and
read back on the next run, so an interrupted sweep resumes where it stopped.

Summary, as in MMDetection's robustness benchmark (``m`` the metric, ``D`` the
distortions, ``S`` the severities)::

    P   = m_clean
    mPC = 1 / (|D| |S|) * sum_{d in D, s in S} m_{d,s}
    rPC = mPC / P
"""
from __future__ import annotations

import copy
import json
import math
import os
import os.path as osp
import sys
from typing import Iterable, Sequence

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import LOOPS, RUNNERS
from mmengine.runner import Runner, TestLoop
from mmengine.utils import ProgressBar

from fq_det.datasets.distortions import (DISTORTIONS, SEVERITIES, check_distortion,
                                         check_severity, needs_boxes)

__all__ = ['run_robustness_sweep', 'format_results_table', 'summarize', 'insert_distort',
           'resolve_distortions', 'KNOWN_METRIC_KEYS']

#: Metric keys looked for, in order, when ``metric_key`` is not given.
KNOWN_METRIC_KEYS = ('pascal_voc/mAP', 'coco/bbox_mAP', 'coco/segm_mAP', 'accuracy/top1')

RESULTS_JSON = 'results.json'
RESULTS_MD = 'results.md'


# ------------------------------------------------------------------ config surgery
def _type_name(transform: dict) -> str:
    t = transform.get('type', '')
    return (t if isinstance(t, str) else getattr(t, '__name__', str(t))).split('.')[-1]


def insert_distort(pipeline: Sequence[dict], distortion: str, severity: int,
                   seed: int = 0) -> list[dict]:
    """A copy of ``pipeline`` with ``Distort`` right after the loading transforms.

    ``Distort`` goes after the leading block of ``Load*`` transforms, so the image is
    distorted at its original resolution, before ``Resize``. If the distortion needs
    boxes and no ``LoadAnnotations`` is in that block (mmdet's VOC/COCO test pipelines
    load annotations after ``Resize``, to evaluate in original coordinates), a copy of
    the pipeline's ``LoadAnnotations`` (boxes only) is inserted before ``Distort``; the
    later one reloads the annotations after ``Resize`` as before.
    """
    distortion, severity = check_distortion(distortion), check_severity(severity)
    pipeline = copy.deepcopy(list(pipeline))
    names = [_type_name(t) for t in pipeline]
    starts = [i for i, n in enumerate(names) if n.startswith('LoadImage')]
    if not starts:
        raise ValueError(f'The test pipeline has no LoadImage* transform to insert Distort '
                         f'after; its transforms are: {", ".join(names)}')
    end = starts[0] + 1
    while end < len(names) and names[end].startswith('Load'):
        end += 1
    new = [dict(type='mmdet.Distort', distortion=distortion, severity=severity, seed=seed)]
    if needs_boxes(distortion) and 'LoadAnnotations' not in names[starts[0]:end]:
        existing = [t for t, n in zip(pipeline, names) if n == 'LoadAnnotations']
        load_ann = copy.deepcopy(existing[0]) if existing else dict(type='mmdet.LoadAnnotations')
        load_ann.update(with_bbox=True, with_mask=False, with_seg=False)
        new.insert(0, load_ann)
    pipeline[end:end] = new
    return pipeline


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
                              seed: int) -> dict:
    cfg = copy.deepcopy(dataloader_cfg)
    if distortion is not None:
        for holder in _pipeline_holders(cfg['dataset']):
            holder['pipeline'] = insert_distort(holder['pipeline'], distortion, severity, seed)
    return cfg


def resolve_distortions(distortions: str | Iterable[str]) -> tuple[str, ...]:
    """``'all'`` -> :data:`DISTORTIONS`; otherwise the checked names, in order."""
    if isinstance(distortions, str):
        distortions = DISTORTIONS if distortions == 'all' else (distortions, )
    distortions = tuple(distortions)
    if 'all' in distortions:
        distortions = tuple(dict.fromkeys(
            [d for x in distortions for d in (DISTORTIONS if x == 'all' else (x, ))]))
    return tuple(check_distortion(d) for d in distortions)


# ---------------------------------------------------------------------- results
def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float('nan')


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


def summarize(results: dict) -> dict:
    """``P``, ``mPC``, ``rPC`` and the per-distortion mean of ``results['metric_key']``."""
    key = results['metric_key']
    per_distortion = {}
    for name, by_severity in results.get('distorted', {}).items():
        values = [m[key] for m in by_severity.values() if key in m]
        if values:
            per_distortion[name] = _mean(values)
    all_values = [m[key] for by_sev in results.get('distorted', {}).values()
                  for m in by_sev.values() if key in m]
    p = results.get('clean', {}).get(key, float('nan'))
    mpc = _mean(all_values)
    rpc = mpc / p if p and not math.isnan(p) else float('nan')
    return dict(P=p, mPC=mpc, rPC=rpc, per_distortion=per_distortion)


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


def _write_json(path: str, results: dict) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)


def _load_existing(path: str, checkpoint: str) -> dict | None:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        old = json.load(f)
    if osp.realpath(old.get('checkpoint', '')) != osp.realpath(checkpoint):
        raise ValueError(f'{path} holds results of checkpoint {old.get("checkpoint")!r}, not '
                         f'{checkpoint!r}; use another out_dir (--out-dir) or delete the file')
    return old


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


def _build_runner(cfg: Config) -> Runner:
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def _evaluate(runner: Runner, cfg: Config, distortion: str | None, severity: int,
              seed: int) -> dict:
    """Evaluate with the config's test loop on a dataloader distorted as asked."""
    dataloader = _distorted_dataloader_cfg(cfg.test_dataloader, distortion, severity, seed)
    loop_cfg = copy.deepcopy(dict(cfg.get('test_cfg') or {}))
    args = dict(runner=runner, dataloader=dataloader, evaluator=copy.deepcopy(cfg.test_evaluator))
    loop = LOOPS.build(loop_cfg, default_args=args) if 'type' in loop_cfg else \
        TestLoop(**loop_cfg, **args)
    # The runner's hooks and log processor read the current loop through runner.test_loop.
    runner._test_loop = loop
    return loop.run()


def run_robustness_sweep(cfg: Config | str, checkpoint: str, out_dir: str,
                         distortions: str | Iterable[str] = 'all',
                         severities: Iterable[int] = SEVERITIES, seed: int = 0,
                         metric_key: str | None = None) -> dict:
    """Evaluate ``checkpoint`` on clean and distorted test data; write results.json/.md.

    Args:
        cfg: the detector's config (object or path); ``launcher``, ``cfg_options`` and
            the like are applied by the caller.
        checkpoint: the weights, loaded once for the whole sweep.
        out_dir: where results.json, results.md and the runner's logs go. An existing
            results.json for the same checkpoint is resumed: its pairs are skipped.
        distortions: ``'all'`` or names from ``DISTORTIONS`` (or ``ic:*``).
        severities: subset of 1..5.
        seed: base seed of :class:`~fq_det.datasets.transforms.Distort`.
        metric_key: the metric summarised; default: the first of
            :data:`KNOWN_METRIC_KEYS` that the evaluator returns.

    Returns:
        The results dict (schema in ``docs/distortions.md``).
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    cfg = copy.deepcopy(cfg)
    distortions = resolve_distortions(distortions)
    severities = tuple(check_severity(s) for s in severities)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {checkpoint}')
    os.makedirs(out_dir, exist_ok=True)
    json_path = osp.join(out_dir, RESULTS_JSON)

    results = _load_existing(json_path, checkpoint) or dict(
        config=cfg.filename or '', checkpoint=osp.abspath(checkpoint), metric_key=metric_key,
        clean={}, distorted={}, summary={})
    if metric_key is not None and results.get('metric_key') not in (None, metric_key):
        raise ValueError(f'{json_path} summarises {results["metric_key"]!r}, not {metric_key!r}; '
                         'use another out_dir')
    pairs = [(None, 0)] + [(d, s) for d in distortions for s in severities]
    done = [(d is None and bool(results['clean']))
            or (d is not None and str(s) in results['distorted'].get(d, {})) for d, s in pairs]

    runner = None
    if not all(done):
        cfg.work_dir = out_dir
        cfg.load_from = checkpoint
        cfg.resume = False
        runner = _build_runner(cfg)
        runner.register_hook(_SweepProgressHook())
        runner.call_hook('before_run')
        runner.load_or_resume()  # the single model load of the sweep
    for i, ((distortion, severity), is_done) in enumerate(zip(pairs, done), start=1):
        label = 'clean' if distortion is None else f'{distortion} {severity}'
        if is_done:
            _print(f'pair {i}/{len(pairs)}: {label} (in {RESULTS_JSON}, skipped)')
            continue
        _print(f'pair {i}/{len(pairs)}: {label}')
        metrics = _to_jsonable(_evaluate(runner, cfg, distortion, severity, seed))
        results['metric_key'] = _pick_metric_key(metrics, results['metric_key'])
        if distortion is None:
            results['clean'] = metrics
        else:
            results['distorted'].setdefault(distortion, {})[str(severity)] = metrics
        results['summary'] = summarize(results)
        if is_main_process():
            _write_json(json_path, results)
    if runner is not None:
        runner.call_hook('after_run')

    if results['metric_key'] is None:
        raise RuntimeError(f'{json_path} has no metric yet; nothing was evaluated')
    results['summary'] = summarize(results)
    table = format_results_table(results)
    if is_main_process():
        _write_json(json_path, results)
        with open(osp.join(out_dir, RESULTS_MD), 'w') as f:
            f.write(table)
    _print(table)
    return results


def _print(msg: str) -> None:
    if is_main_process():
        print(msg, flush=True)
