"""The supplement's classification tables.

Table 1: error mean ± std over training seeds; ``best_metric(work_dir)`` reads what
mmengine's ``LocalVisBackend`` logged (``<work_dir>/<timestamp>/vis_data/scalars.json``,
read by :func:`fq_det.utils.io.read_scalars`) and returns the best validation
``accuracy/top1``; error = 100 - top-1.

Table 3: a classification sweep's ``results.json`` (``metric_key='accuracy/top1'``, and
``accuracy/top5`` when the evaluator measures it; with several seeds ``distorted`` holds
means over seeds, ``distorted_std`` the standard deviations (``ddof=0``), ``per_seed`` the
raw values) as the supplement's row: top-5, or top-1 when the evaluator measures no top-5
(said in the header); targeted occlusion top-1; severities averaged, ``mean ± std`` over
seeds; then a per-severity table. :func:`format_classification_table` is the
classification sweep's ``results.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from fq_det.utils.io import read_scalars

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


def best_metric(work_dir: str | Path, key: str = 'accuracy/top1') -> float:
    """Largest ``key`` logged under ``work_dir`` (all timestamps, resumed runs included)."""
    values = [float(record[key]) for record in read_scalars(work_dir, recursive=True)
              if key in record]
    if not values:
        files = list(Path(work_dir).glob('**/vis_data/scalars.json'))
        raise FileNotFoundError(f"no '{key}' logged under '{work_dir}' (looked for "
                                f"{work_dir}/*/vis_data/scalars.json; {len(files)} file(s) found)")
    return max(values)


def format_table1(rows: Mapping[str, Sequence[float]], columns: Sequence[str] = ('error', )) -> str:
    """Markdown: one row per label, ``mean ± std`` (ddof 0) of each column's values.

    ``rows[label]`` is a list of values (one column) or a list of per-column lists.
    """
    lines = ['| Models | ' + ' | '.join(columns) + ' |', '|---|' + '---|' * len(columns)]
    for label, values in rows.items():
        cols = values if values and isinstance(values[0], (list, tuple)) else [values]
        cells = [
            f'{np.mean(v):.2f} ± {np.std(v):.2f} (n={len(v)})' if len(v) else '-' for v in cols
        ]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _severity_mean(results: dict, distortion: str, metric: str) -> tuple[float, float]:
    """Mean over severities of ``metric``, and the std over seeds of that mean."""
    per_seed = results.get('per_seed', {}).get(distortion)
    if per_seed:
        by_seed = np.mean([per_seed[s][metric] for s in per_seed], axis=0)  # (num_seeds,)
        return float(by_seed.mean()), float(by_seed.std())
    values = [v[metric] for v in results['distorted'][distortion].values()]
    return float(np.mean(values)), 0.0


def table_metric(results: dict) -> str:
    """The Table 3 metric of one results dict: top-5 if the evaluator measured it, else top-1."""
    return TOP5_KEY if TOP5_KEY in results.get('clean', {}) else METRIC_KEY


def table3_row(results: dict, metric: str | None = None) -> dict:
    """``{column: (mean, std)}`` of one results dict in the supplement's Table 3 layout.

    ``metric`` defaults to :func:`table_metric`; targeted occlusion is always top-1.
    """
    metric = metric or table_metric(results)
    row = {'Clean': (results['clean'][metric], 0.0)}
    for d in results['distorted']:
        m = METRIC_KEY if d in TOP1_DISTORTIONS else metric
        row[TABLE3_COLUMNS.get(d, d)] = _severity_mean(results, d, m)
    return row


def format_classification_table(results: dict | Sequence[dict],
                                labels: Sequence[str] | None = None) -> str:
    """Markdown: the Table 3 row(s) (top-5, or top-1 without top-5; targeted occlusion
    top-1) + per-severity details."""
    many = [results] if isinstance(results, dict) else list(results)
    labels = list(labels) if labels is not None else [
        r.get('model', f'model{i}') for i, r in enumerate(many)
    ]
    metrics = [table_metric(r) for r in many]
    rows = [table3_row(r, m) for r, m in zip(many, metrics)]
    cols = list(dict.fromkeys(c for row in rows for c in row))
    if set(metrics) == {TOP5_KEY}:
        measured = 'top-5 %'
    elif set(metrics) == {METRIC_KEY}:
        measured = 'top-1 %: the evaluator measured no top-5'
    else:
        measured = 'top-5 %; top-1 % for the models marked ᵇ, whose evaluator measured no top-5'
        labels = [lab + ('ᵇ' if m == METRIC_KEY else '') for lab, m in zip(labels, metrics)]

    def cell(v: tuple | None) -> str:
        if v is None:
            return '-'
        return f'{v[0]:.1f} ± {v[1]:.1f}' if v[1] > 0 else f'{v[0]:.1f}'

    lines = [
        f'Classification accuracy ({measured}, severities averaged' +
        ('; ᵃ top-1' if any('Tar. Occ.ᵃ' in c for c in cols) else '') + ').', '',
        '| Model | ' + ' | '.join(cols) + ' |', '|---|' + '---|' * len(cols)
    ]
    lines += [
        f'| {label} | ' + ' | '.join(cell(row.get(c)) for c in cols) + ' |'
        for label, row in zip(labels, rows)
    ]
    for label, r in zip(labels, many):
        lines += _per_severity_lines(label, r)
    return '\n'.join(lines) + '\n'


def _per_severity_lines(label: str, r: dict) -> list[str]:
    """One model's per-severity table (top-1 / top-5 %, ``±`` the std over seeds)."""
    seeds = r.get('seeds', [0])
    summary = r.get('summary', {})
    keys = [k for k in (METRIC_KEY, TOP5_KEY) if k in r['clean']]
    names = [k.split('/')[-1].replace('top', 'top-') for k in keys]
    lines = [
        '', f'### {label}: per severity ({" / ".join(names)} %, mean over seeds {seeds})', '',
        'Clean: ' + ', '.join(f"{n} {r['clean'][k]:.2f}" for n, k in zip(names, keys)) + '. '
        + ', '.join(f'{k} {summary[k]:.3f}' for k in ('P', 'mPC', 'rPC') if k in summary), ''
    ]
    sev = list(dict.fromkeys(s for d in r['distorted'].values() for s in d))
    lines += ['| Distortion | ' + ' | '.join(f'sev {s}' for s in sev) + ' |',
              '|---|' + '---|' * len(sev)]
    for d, by_sev in r['distorted'].items():
        std = r.get('distorted_std', {}).get(d, {})

        def one(s: str) -> str:
            if s not in by_sev:
                return '-'
            v, e = by_sev[s], std.get(s, {})
            return ' / '.join(f'{v[k]:.1f}' + (f'±{e[k]:.1f}' if e.get(k) else '')
                              for k in keys if k in v)

        lines.append(f'| {d} | ' + ' | '.join(one(s) for s in sev) + ' |')
    return lines
