"""Metric against distortion severity, one line per model (supplement Fig. 3), and mPC/rPC bars.

Reads the robustness sweep's ``results.json`` schema::

    {"metric_key": "pascal_voc/mAP", "clean": {metric: value},
     "distorted": {distortion: {"<severity>": {metric: value}}},
     "summary": {"P", "mPC", "rPC", "per_distortion": {...}}}

Severity 0 on the x axis is the clean score.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

CURVE_FIELDS = ('model', 'distortion', 'severity', 'metric', 'value')


def load_results(path: str | Path) -> dict:
    """Read a ``results.json`` and check the keys this module needs (errors name the file)."""
    from fq_det.utils.io import read_json
    if not Path(path).is_file():
        raise FileNotFoundError(f'{path}: no such results file')
    results = read_json(str(path))
    _check(results, str(path))
    return results


def _check(results: dict, where: str) -> None:
    missing = [k for k in ('metric_key', 'clean', 'distorted') if k not in results]
    if missing:
        raise ValueError(f'{where}: not a robustness results dict, missing {missing} '
                         '(expected keys metric_key, clean, distorted, summary)')
    if results['metric_key'] not in results['clean']:
        raise ValueError(f"{where}: metric {results['metric_key']!r} not in clean results "
                         f"{sorted(results['clean'])}")


def _curve(results: dict, distortion: str) -> tuple[list[int], list[float]]:
    key = results['metric_key']
    per_sev = results['distorted'].get(distortion, {})
    sevs = sorted(per_sev, key=int)
    return [0] + [int(s) for s in sevs], [results['clean'][key]] + [per_sev[s][key] for s in sevs]


def _summary(results: dict) -> dict:
    """P, mPC, rPC from the file, or recomputed from the raw numbers if absent."""
    if 'summary' in results and all(k in results['summary'] for k in ('P', 'mPC', 'rPC')):
        return results['summary']
    key = results['metric_key']
    vals = [v[key] for d in results['distorted'].values() for v in d.values()]
    p = results['clean'][key]
    mpc = sum(vals) / len(vals) if vals else float('nan')
    return dict(P=p, mPC=mpc, rPC=mpc / p if p else float('nan'))


def plot_robustness(results: Sequence[dict], labels: Sequence[str], out_file: str | Path,
                    *, ncols: int = 4, dpi: int = 100) -> dict[str, Path]:
    """Severity curves per distortion (one line per model) plus mPC and rPC bar panels.

    Writes ``out_file`` (PNG) and ``<stem>.csv`` beside it (model, distortion, severity,
    metric, value; severity 0 = clean; distortion 'summary' rows hold P, mPC, rPC).
    Returns ``{'figure': path, 'csv': path}``.
    """
    if not results:
        raise ValueError('no results given')
    if len(labels) != len(results):
        raise ValueError(f'{len(labels)} labels for {len(results)} results')
    for r, lab in zip(results, labels):
        _check(r, lab)
    distortions = list(dict.fromkeys(d for r in results for d in r['distorted']))
    n_panels = len(distortions) + 2
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(3.2 * ncols, 2.6 * nrows))
    flat = list(axes.flat)
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    rows = _curve_panels(flat, distortions, results, labels, colors)
    rows += _summary_panels(flat[len(distortions):len(distortions) + 2], results, labels, colors)
    for ax in flat[n_panels:]:
        ax.axis('off')
    bottom = _legend(fig, flat, n_panels)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    csv_path = out.with_suffix('.csv')
    with csv_path.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return {'figure': out, 'csv': csv_path}


def _curve_panels(axes: list, distortions: list[str], results: Sequence[dict],
                  labels: Sequence[str], colors: list[str]) -> list[dict]:
    """One panel per distortion: the metric against severity, a line per model; returns
    the plotted points as CSV rows."""
    metric = results[0]['metric_key']
    rows = []
    for ax, dist in zip(axes, distortions):
        for i, (r, lab) in enumerate(zip(results, labels)):
            if dist not in r['distorted']:
                continue
            xs, ys = _curve(r, dist)
            ax.plot(xs, ys, marker='o', ms=3, color=colors[i % len(colors)], label=lab)
            rows += [dict(model=lab, distortion=dist, severity=x, metric=r['metric_key'], value=y)
                     for x, y in zip(xs, ys)]
        ax.set_title(dist.replace('_', ' '), fontsize=9)
        ax.set_xlabel('severity (0 = clean)', fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return rows


def _summary_panels(axes: list, results: Sequence[dict], labels: Sequence[str],
                    colors: list[str]) -> list[dict]:
    """mPC and rPC bars, a bar per model, on the two ``axes``; returns P, mPC, rPC of each
    model as CSV rows (distortion 'summary')."""
    metric = results[0]['metric_key']
    summaries = [_summary(r) for r in results]
    for ax, name in zip(axes, ('mPC', 'rPC')):
        vals = [s[name] for s in summaries]
        bars = ax.bar(range(len(labels)), vals, color=[colors[i % len(colors)] for i in range(len(labels))])
        ax.bar_label(bars, labels=['n/a' if math.isnan(v) else f'{v:.3g}' for v in vals], fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=7)
        ax.set_title(f'{name} ({metric})' if name == 'mPC' else 'rPC = mPC / P', fontsize=9)
        ax.tick_params(axis='y', labelsize=7)
        ax.margins(y=0.15)
    return [dict(model=lab, distortion='summary', severity='', metric=k, value=s[k])
            for lab, s in zip(labels, summaries) for k in ('P', 'mPC', 'rPC')]


def _legend(fig, axes: list, n_panels: int) -> float:
    """The models' legend in the first free panel, or below the panels when none is free;
    returns the figure height fraction it takes at the bottom."""
    handles, names = axes[0].get_legend_handles_labels()
    bottom = 0.0
    if handles and len(axes) > n_panels:  # a free panel holds the legend
        axes[n_panels].legend(handles, names, loc='center', fontsize=9, title='model')
    elif handles:
        fig.legend(handles, names, loc='lower center', fontsize=8, ncol=min(len(names), 4))
        bottom = 0.06
    return bottom
