"""Statistics of the learned POW exponents (the supplement's Figure 2).

POW layers keep their per-channel exponent offsets in a parameter named ``alpha``
(``p = 1 + alpha``), so a checkpoint's state-dict keys ending in ``.alpha`` are
the POW layers. Per layer this module reports the channel count, mean, std,
the fraction of near-identity channels ``|alpha| < zero_tol`` (L1 regularisation
drives most of them there) and the fraction ``alpha > 0`` (``p > 1``: values below
the segment width are pushed down, values above it amplified).
"""
from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

ALPHA_SUFFIX = '.alpha'
SUMMARY_FIELDS = ('layer', 'count', 'mean', 'std', 'min', 'max', 'frac_near_zero', 'frac_positive')


def _state_dict_of(checkpoint: str | Path | Mapping) -> Mapping:
    """A state dict from a checkpoint path, an mmengine checkpoint dict or a state dict."""
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f'checkpoint not found: {path}')
        # weights_only stays on: ``import fq_det`` allow-lists what mmengine writes.
        checkpoint = torch.load(str(path), map_location='cpu', weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'expected a checkpoint path or dict, got {type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def extract_alphas(checkpoint: str | Path | Mapping) -> 'OrderedDict[str, np.ndarray]':
    """``{layer name: alpha values (float64, flattened)}`` for every ``*.alpha`` key.

    Raises ``ValueError`` when there is none (a plain, SF or HPOW model: HPOW predicts
    its exponents per image and stores no ``alpha``).
    """
    state = _state_dict_of(checkpoint)
    alphas = OrderedDict()
    for key, value in state.items():
        if key.endswith(ALPHA_SUFFIX) and isinstance(value, torch.Tensor):
            alphas[key[:-len(ALPHA_SUFFIX)]] = value.detach().to(torch.float64).flatten().numpy()
    if not alphas:
        src = checkpoint if isinstance(checkpoint, (str, Path)) else 'the given state dict'
        raise ValueError(f'no POW exponents in {src}: no state-dict key ends in {ALPHA_SUFFIX!r} '
                         f'({len(state)} keys). Only POW models (ResNetPOW, quant type POW) learn '
                         'alpha; SF has none and HPOW predicts it per image.')
    return alphas


def summarize_alphas(alphas: Mapping[str, np.ndarray], zero_tol: float = 0.05) -> list[dict]:
    """One row per layer with ``SUMMARY_FIELDS``, plus a final ``'ALL'`` row."""
    if zero_tol < 0:
        raise ValueError(f'zero_tol must be >= 0, got {zero_tol}')

    def row(name: str, a: np.ndarray) -> dict:
        return dict(layer=name, count=int(a.size), mean=float(a.mean()), std=float(a.std()),
                    min=float(a.min()), max=float(a.max()),
                    frac_near_zero=float((np.abs(a) < zero_tol).mean()),
                    frac_positive=float((a > 0).mean()))

    rows = [row(name, a) for name, a in alphas.items()]
    rows.append(row('ALL', np.concatenate(list(alphas.values()))))
    return rows


def write_summary_csv(rows: list[dict], out_file: str | Path) -> Path:
    """Write :func:`summarize_alphas` rows to CSV."""
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return out


def format_summary_table(rows: list[dict]) -> str:
    """Markdown table of the summary rows."""
    head = '| layer | count | mean | std | \\|alpha\\| < tol | alpha > 0 |'
    lines = [head, '|---|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f"| {r['layer']} | {r['count']} | {r['mean']:+.4f} | {r['std']:.4f} | "
                     f"{r['frac_near_zero']:.1%} | {r['frac_positive']:.1%} |")
    return '\n'.join(lines)
