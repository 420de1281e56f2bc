"""Top-1/top-5 of a classifier on clean and distorted images (supplement Table 3).

One model load for the whole sweep; each (distortion, severity, seed) condition re-runs the
test set with ``WholeImageBox`` + fq_det's ``Distort`` inserted into the test pipeline
(right after image loading, before resizing/cropping, as in the detection sweep). Finished
conditions are kept in ``<out_dir>/partial.json``, so an interrupted sweep resumes where it
stopped.

Output (``results.json``): the project's robustness schema with
``metric_key='accuracy/top1'`` and ``accuracy/top5`` alongside; with several seeds the
``distorted`` values are means over seeds, ``distorted_std`` holds the standard deviations
(population std, ``ddof=0``) and ``per_seed`` the raw values. ``summary`` (P, mPC, rPC) is
computed by ``fq_det.evaluation.robustness`` from the means.
``results.md``: the Table 3 row (top-5, targeted occlusion top-1, severities averaged,
``mean ± std`` over seeds), then a per-severity top-1/top-5 table.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar

from mmdet.registry import MODELS

METRIC_KEY = 'accuracy/top1'
TOP5_KEY = 'accuracy/top5'
# Column titles of the supplement's Table 3 (targeted occlusion is reported as top-1 there).
TABLE3_COLUMNS = {
    'motion_blur': 'Motion Blur',
    'jpeg': 'Jpeg Comp.',
    'salt_pepper': 'Salt & Pepper',
    'ngrn': 'NGRN Noise',
    'inpainting': 'Inpaint.',
    'targeted_occlusion': 'Tar. Occ.ᵃ',
    'gaussian_noise': 'Gauss. Noise'
}
TOP1_DISTORTIONS = ('targeted_occlusion', )


def distorted_pipeline(pipeline: Sequence[dict], distortion: str, severity: int,
                       seed: int) -> list[dict]:
    """Copy of ``pipeline`` with ``Distort`` after its image-loading step (at the start for
    in-memory data sets), preceded by ``WholeImageBox`` when the distortion needs boxes."""
    from fq_det.datasets.distortions import needs_boxes

    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    at = max(
        (i + 1 for i, t in enumerate(pipeline) if str(t.get('type', '')).startswith('LoadImage')),
        default=0)
    extra = [dict(type='Distort', distortion=distortion, severity=severity, seed=seed)]
    if needs_boxes(distortion):
        extra.insert(0, dict(type='WholeImageBox'))
    return pipeline[:at] + extra + pipeline[at:]


def _evaluate(model: torch.nn.Module, dataloader, evaluator: Evaluator, title: str) -> dict:
    bar = ProgressBar(len(dataloader.dataset))
    print_log(title, logger='current')
    with torch.no_grad():
        for data in dataloader:
            outputs = model.test_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
            for _ in range(len(outputs)):
                bar.update()
    print()
    return evaluator.evaluate(len(dataloader.dataset))


def run_classification_robustness(cfg: Config | str,
                                  checkpoint: str,
                                  out_dir: str | Path,
                                  distortions: Sequence[str] | None = None,
                                  severities: Sequence[int] | None = None,
                                  seeds: Sequence[int] = (0, ),
                                  model_name: str | None = None) -> dict:
    """Clean + every (distortion, severity) per seed; writes results.json/.md; returns results."""
    from fq_det.datasets.distortions import SEVERITIES, check_severity
    from fq_det.evaluation.robustness import resolve_distortions

    cfg = Config.fromfile(cfg) if isinstance(cfg, (str, Path)) else copy.deepcopy(cfg)
    distortions = resolve_distortions('all' if distortions is None else distortions)
    severities = tuple(
        check_severity(int(s)) for s in (SEVERITIES if severities is None else severities))
    if not seeds:
        raise ValueError('need at least one seed')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    init_default_scope(cfg.get('default_scope', 'mmdet'))

    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    if torch.cuda.is_available():
        model = model.cuda()
    model.eval()
    # Workers must not outlive a condition: the pipeline is swapped between conditions, and
    # non-persistent workers pick the current one up when each pass starts.
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg['persistent_workers'] = False
    dataloader = Runner.build_dataloader(loader_cfg, seed=0)
    dataset = dataloader.dataset
    pipeline_cfg = list(cfg.test_dataloader.dataset.pipeline)
    evaluator_cfg = cfg.get('test_evaluator', dict(type='TopKAccuracy', topk=(1, 5)))

    partial_file = out_dir / 'partial.json'
    done = json.loads(partial_file.read_text()) if partial_file.is_file() else {}
    identity = {'checkpoint': str(checkpoint), 'num_samples': len(dataset)}
    if any(done.get(k, v) != v for k, v in identity.items()):
        print_log(
            f'{partial_file} belongs to another checkpoint or test set: starting afresh',
            logger='current')
        done = {}
    done.update(identity)
    conditions = [('clean', 0, 0)] + [(d, s, seed) for seed in seeds for d in distortions
                                      for s in severities]
    for name, severity, seed in conditions:
        key = f'{name}/{severity}/{seed}'
        if key in done:
            continue
        pipeline = pipeline_cfg if name == 'clean' else distorted_pipeline(
            pipeline_cfg, name, severity, seed)
        dataset.pipeline = Compose(pipeline)
        metrics = evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]
        evaluator = Evaluator([copy.deepcopy(m) for m in metrics])
        done[key] = _evaluate(model, dataloader, evaluator, f'[{key}]')
        partial_file.write_text(json.dumps(done, indent=1))

    results = _assemble(cfg, checkpoint, done, distortions, severities, seeds)
    results['model'] = model_name or Path(getattr(cfg, 'filename', None) or 'model').stem
    (out_dir / 'results.json').write_text(json.dumps(results, indent=2))
    (out_dir / 'results.md').write_text(format_classification_table(results))
    return results


def _assemble(cfg, checkpoint, done: dict, distortions, severities, seeds) -> dict:
    from fq_det.evaluation.robustness import summarize

    distorted, distorted_std, per_seed = {}, {}, {}
    for d in distortions:
        distorted[d], distorted_std[d], per_seed[d] = {}, {}, {}
        for s in severities:
            runs = [done[f'{d}/{s}/{seed}'] for seed in seeds]
            keys = runs[0].keys()
            distorted[d][str(s)] = {k: float(np.mean([r[k] for r in runs])) for k in keys}
            distorted_std[d][str(s)] = {k: float(np.std([r[k] for r in runs])) for k in keys}
            per_seed[d][str(s)] = {k: [float(r[k]) for r in runs] for k in keys}
    results = {
        'config': str(getattr(cfg, 'filename', '') or ''),
        'checkpoint': str(checkpoint),
        'metric_key': METRIC_KEY,
        'clean': done['clean/0/0'],
        'distorted': distorted,
        'distorted_std': distorted_std,
        'seeds': [int(s) for s in seeds],
        'per_seed': per_seed
    }
    results['summary'] = summarize(results)
    return results


def _severity_mean(results: dict, distortion: str, metric: str) -> tuple[float, float]:
    """Mean over severities of ``metric``, and the std over seeds of that mean."""
    per_seed = results.get('per_seed', {}).get(distortion)
    if per_seed:
        by_seed = np.mean([per_seed[s][metric] for s in per_seed], axis=0)  # (num_seeds,)
        return float(by_seed.mean()), float(by_seed.std())
    values = [v[metric] for v in results['distorted'][distortion].values()]
    return float(np.mean(values)), 0.0


def table3_row(results: dict, metric: str = TOP5_KEY) -> dict:
    """``{column: (mean, std)}`` of one results dict in the supplement's Table 3 layout."""
    row = {'Clean': (results['clean'][metric], 0.0)}
    for d in results['distorted']:
        m = METRIC_KEY if d in TOP1_DISTORTIONS else metric
        row[TABLE3_COLUMNS.get(d, d)] = _severity_mean(results, d, m)
    return row


def format_classification_table(results: dict | Sequence[dict],
                                labels: Sequence[str] | None = None) -> str:
    """Markdown: the Table 3 row(s) (top-5; targeted occlusion top-1) + per-severity details."""
    many = [results] if isinstance(results, dict) else list(results)
    labels = list(labels) if labels is not None else [
        r.get('model', f'model{i}') for i, r in enumerate(many)
    ]
    rows = [table3_row(r, TOP5_KEY if TOP5_KEY in r['clean'] else METRIC_KEY) for r in many]
    cols = list(dict.fromkeys(c for row in rows for c in row))

    def cell(v: tuple | None) -> str:
        if v is None:
            return '-'
        return f'{v[0]:.1f} ± {v[1]:.1f}' if v[1] > 0 else f'{v[0]:.1f}'

    lines = [
        'Classification accuracy (top-5 %, severities averaged' +
        ('; ᵃ top-1' if any('Tar. Occ.ᵃ' in c for c in cols) else '') + ').', '',
        '| Model | ' + ' | '.join(cols) + ' |', '|---|' + '---|' * len(cols)
    ]
    lines += [
        f'| {label} | ' + ' | '.join(cell(row.get(c)) for c in cols) + ' |'
        for label, row in zip(labels, rows)
    ]
    for label, r in zip(labels, many):
        seeds = r.get('seeds', [0])
        summary = r.get('summary', {})
        lines += [
            '', f'### {label}: per severity (top-1 / top-5 %, mean over seeds {seeds})', '',
            'Clean: ' + ', '.join(f"{k.split('/')[-1]} {r['clean'][k]:.2f}" for k in (METRIC_KEY, TOP5_KEY)
                                  if k in r['clean']) + '. ' +
            ', '.join(f'{k} {summary[k]:.3f}' for k in ('P', 'mPC', 'rPC') if k in summary), ''
        ]
        sev = list(dict.fromkeys(s for d in r['distorted'].values() for s in d))
        lines += [
            '| Distortion | ' + ' | '.join(f'sev {s}' for s in sev) + ' |',
            '|---|' + '---|' * len(sev)
        ]
        for d, by_sev in r['distorted'].items():
            std = r.get('distorted_std', {}).get(d, {})

            def one(s: str) -> str:
                if s not in by_sev:
                    return '-'
                v, e = by_sev[s], std.get(s, {})
                return ' / '.join(f'{v[k]:.1f}' + (f'±{e[k]:.1f}' if e.get(k) else '')
                                  for k in (METRIC_KEY, TOP5_KEY) if k in v)

            lines.append(f'| {d} | ' + ' | '.join(one(s) for s in sev) + ' |')
    return '\n'.join(lines) + '\n'
