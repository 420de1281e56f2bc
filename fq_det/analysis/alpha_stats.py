"""Statistics of the learned POW exponents (the supplement's Figure 2).

POW layers keep their per-channel exponent parameters in a parameter named ``alpha``
(``p = 1 + alpha`` or ``p = alpha``, the layer's reading, recorded next to it as
``<layer>._extra_state``), so a checkpoint's state-dict keys ending in ``.alpha`` are
the POW layers. :func:`summarize_alphas` reports per layer the channel count, mean, std,
the fraction of near-identity channels ``|alpha| < zero_tol`` and the fraction
``alpha > 0``; :func:`extract_exponents` gives the exponents ``p`` themselves and
:func:`exponent_stats` what they do: mean ``p``, the share of channels with
``p < QUANTIZING_BELOW`` (values in a segment pulled toward its upper level) and with
``p > AMPLIFYING_ABOVE`` (values below the segment width pushed down, above it amplified),
and a histogram over ``EXPONENT_BINS``.
"""
from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from fq_det.utils.io import unwrap_state_dict

ALPHA_SUFFIX = '.alpha'
#: a channel with ``p`` below this counts as quantizing, above ``AMPLIFYING_ABOVE`` as amplifying
QUANTIZING_BELOW = 0.5
AMPLIFYING_ABOVE = 1.5
#: a channel with ``|alpha| = |p - 1|`` above this has moved away from the identity
MOVED_ABOVE = 0.1
#: a channel with ``|alpha|`` below this counts as the identity (:func:`summarize_alphas`)
NEAR_IDENTITY_BELOW = 0.05
#: histogram bins of ``p`` (the last bin also counts every ``p`` above its edge)
EXPONENT_BINS = tuple(float(x) for x in np.round(np.linspace(0.0, 3.0, 31), 6))
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
    return unwrap_state_dict(checkpoint)


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


def extract_exponents(checkpoint: str | Path | Mapping) -> 'OrderedDict[str, np.ndarray]':
    """``{layer name: exponents p (float64, flattened)}``: each layer's ``alpha`` through its
    recorded reading and clamp (a layer without the record: ``p = 1 + clamp(alpha, [-0.5,
    4])``, the only reading such checkpoints were written with)."""
    from fq_det.models.quantizers.exponents import READINGS, reading_of_state
    state = _state_dict_of(checkpoint)
    out = OrderedDict()
    for layer, alpha in extract_alphas(state).items():
        reading, (lo, hi) = reading_of_state(state, layer) or (
            READINGS['offset'], READINGS['offset'].default_range)
        out[layer] = np.clip(alpha, lo, hi) + reading.offset
    return out


def exponent_stats(p: np.ndarray) -> dict:
    """Mean and std of ``p``, the shares quantizing / amplifying, the histogram counts."""
    p = np.asarray(p, dtype=np.float64).ravel()
    counts, _ = np.histogram(np.clip(p, EXPONENT_BINS[0], EXPONENT_BINS[-1]), bins=EXPONENT_BINS)
    return dict(p_mean=float(p.mean()), p_std=float(p.std()),
                frac_quantizing=float((p < QUANTIZING_BELOW).mean()),
                frac_amplifying=float((p > AMPLIFYING_ABOVE).mean()),
                p_hist=[int(c) for c in counts])


def exponent_layer_stats(name: str, p: np.ndarray) -> dict:
    """One layer's row of a study run: of ``alpha = p - 1`` (the distance from the identity)
    the count, mean, std, mean ``|alpha|`` and the share with ``|alpha| > MOVED_ABOVE``; of
    ``p`` the :func:`exponent_stats`."""
    p = np.asarray(p, dtype=np.float64).ravel()
    a = p - 1
    return dict(layer=name, count=int(a.size), mean=float(a.mean()), std=float(a.std()),
                mean_abs=float(np.abs(a).mean()),
                frac_moved=float((np.abs(a) > MOVED_ABOVE).mean()), **exponent_stats(p))


def summarize_alphas(alphas: Mapping[str, np.ndarray],
                     zero_tol: float = NEAR_IDENTITY_BELOW) -> list[dict]:
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
