"""The POW curve ``f(x)`` for several exponents (how the direct reading's small ``p`` quantize)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def plot_pow_curves(out_file: str | Path, exponents: Sequence[float] = (2.0, 1.0, 0.5, 0.1, 0.01),
                    splits: Sequence[int] = (1, 2), x_max: float = 2.5) -> Path:
    """One panel per ``k`` in ``splits``: ``f(x) = b_j + w * ((x - b_j)/w) ** p`` (``w = 1``)
    on ``[-x_max, x_max]`` for each ``p`` in ``exponents``, computed by the POW layer itself."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from fq_det.models.quantizers import POW
    x = torch.linspace(-x_max, x_max, 2001, dtype=torch.float64).view(1, 1, -1)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.4), squeeze=False)
    for ax, k in zip(axes.flat, splits):
        for p in exponents:
            layer = POW(1, num_splits=k, exponent='direct').double()
            with torch.no_grad():
                layer.alpha.fill_(p)
                y = layer(x)
            ax.plot(x.flatten(), y.flatten(), lw=1.2, label=f'p = {p:g}')
        ax.set_title(f'POW-{k} (w = 1)', fontsize=10)
        ax.set_xlabel('x')
        ax.set_ylabel('f(x)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
