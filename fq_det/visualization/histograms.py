"""Grids of histograms: moment shifts per layer (supplement Fig. 1), alpha per layer (Fig. 2)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_histogram_panels(panels: Mapping[str, np.ndarray], out_file: str | Path, *,
                          ncols: int = 4, bins: int = 30, xlabel: str = '',
                          suptitle: str | None = None, vline: float | None = 0.0,
                          panel_size: tuple[float, float] = (3.0, 2.2), dpi: int = 100) -> Path:
    """One histogram per entry of ``panels`` (title = key), ``ncols`` per row.

    ``vline`` draws a reference line (0: no shift / identity exponent). Non-finite
    values are dropped; the figure is ``ncols * panel_size[0]`` inches wide.
    """
    if not panels:
        raise ValueError('nothing to plot: panels is empty')
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows + (0.5 if suptitle else 0)))
    for ax, (title, values) in zip(axes.flat, panels.items()):
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = float(v.min()), float(v.max())
            if hi - lo < 1e-12:  # all equal (e.g. zero shift): a visible bar around the value
                lo, hi = lo - 0.5, hi + 0.5
            ax.hist(v, bins=bins, range=(lo, hi), color='tab:blue', alpha=0.85)
        if vline is not None:
            ax.axvline(vline, color='tab:red', lw=0.8, ls='--')
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        if xlabel:
            ax.set_xlabel(xlabel, fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
