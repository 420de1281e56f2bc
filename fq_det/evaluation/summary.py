"""Robustness summaries, one definition each (Michaelis et al. 2019; Hendrycks and
Dietterich 2019), used by the sweep, the study report, the bootstrap and the main job.

With ``m_clean`` the metric on clean images and ``m_{d,s}`` under distortion ``d`` at
severity ``s``::

    P   = m_clean
    mPC = mean over (d, s) of m_{d,s}           (every pair weighs the same)
    rPC = mPC / P                               (nan where P is 0)

and with the error ``E = full - m`` (``full`` = 1 for mAP, 100 for accuracy in percent)
against a reference model ``ref``::

    CE_d  = sum_s E_{d,s} / sum_s E^ref_{d,s}                                mCE = mean_d CE_d
    rCE_d = sum_s (E_{d,s} - E_clean) / sum_s (E^ref_{d,s} - E^ref_clean)    relative mCE = mean_d rCE_d

Values may be floats or arrays of bootstrap replicates (numpy broadcasting).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ['ratio', 'performance_rows', 'summarize', 'corruption_errors']


def ratio(a: Any, b: Any) -> Any:
    """``a / b``, ``nan`` where ``b`` is 0 (floats or replicate arrays)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = np.divide(a, b, out=np.full(np.broadcast(a, b).shape, np.nan), where=b != 0)
    return float(out) if out.ndim == 0 else out


def performance_rows(clean: Any, distorted: Mapping[str, Mapping[int, Any]],
                     seen: Sequence[str] = ()) -> dict:
    """``{'P', <distortion>: mean over its severities, 'mPC', 'rPC'}``; with ``seen`` (the
    distortions a model trained with) also ``'mPC seen'`` and ``'mPC unseen'``."""
    rows = {'P': clean}
    all_values, seen_values, unseen_values = [], [], []
    for d, by_sev in distorted.items():
        vals = [by_sev[s] for s in sorted(by_sev)]
        rows[d] = sum(vals) / len(vals)
        all_values += vals
        (seen_values if d in seen else unseen_values).extend(vals)
    rows['mPC'] = sum(all_values) / len(all_values)
    rows['rPC'] = ratio(rows['mPC'], clean)
    if seen:
        rows['mPC seen'] = sum(seen_values) / len(seen_values)
        rows['mPC unseen'] = sum(unseen_values) / len(unseen_values) if unseen_values else math.nan
    return rows


def summarize(results: Mapping) -> dict:
    """``{'P', 'mPC', 'rPC', 'per_distortion'}`` of a sweep's ``results`` dict (the metric
    ``results['metric_key']``; pairs without it are left out, ``nan`` where nothing is left)."""
    key = results['metric_key']
    distorted = {d: {int(s): m[key] for s, m in by_sev.items() if key in m}
                 for d, by_sev in results.get('distorted', {}).items()}
    distorted = {d: by_sev for d, by_sev in distorted.items() if by_sev}
    p = results.get('clean', {}).get(key, float('nan'))
    if not distorted:
        return dict(P=p, mPC=float('nan'), rPC=float('nan'), per_distortion={})
    rows = performance_rows(p, distorted)
    rpc = rows['rPC'] if p and not math.isnan(p) else float('nan')
    return dict(P=p, mPC=rows['mPC'], rPC=rpc, per_distortion={d: rows[d] for d in distorted})


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
