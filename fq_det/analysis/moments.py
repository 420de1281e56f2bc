"""Streaming per-channel moments (mean, variance, skewness, kurtosis) and their shift.

Features of a layer, shape ``(N, C, H, W)`` (or ``(N, C)``), are reduced per channel
``c`` over every image and position. Batches are merged with the pairwise update of
Chan et al. / Pebay (2008) in float64, so the result does not depend on how the data
is split into batches (up to rounding) and does not lose precision on large counts.
With central sums ``M_k = sum_i (x_i - mean)^k`` over ``n`` values:

    variance  = M_2 / n                         (population variance)
    skewness  = sqrt(n) * M_3 / M_2^(3/2)
    kurtosis  = n * M_4 / M_2^2 - 3             (excess kurtosis: 0 for a normal law)

A channel whose variance is zero (a dead ReLU, a constant) has no shape; its skewness
and kurtosis are reported as 0 (see ``RunningMoments.skewness``).
The shift between two distributions is ``distorted - clean`` for each moment.
"""
from __future__ import annotations

import numpy as np
import torch

MOMENT_NAMES = ('mean', 'variance', 'skewness', 'kurtosis')

# Relative variance below which a channel is treated as constant (float32 features
# carry ~1e-7 relative precision, so anything below this is rounding noise).
_DEGENERATE_REL_VAR = 1e-12


def _as_channels_last_2d(features: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(N, C, *spatial)`` -> float64 array ``(N * prod(spatial), C)``."""
    if isinstance(features, torch.Tensor):
        features = features.detach().to('cpu', torch.float64).numpy()
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f'features must have shape (N, C) or (N, C, H, W, ...), got {arr.shape}')
    arr = np.moveaxis(arr, 1, -1)
    return arr.reshape(-1, arr.shape[-1])


class RunningMoments:
    """Per-channel count and central sums ``M_1 .. M_4``, merged batch by batch."""

    def __init__(self, num_channels: int) -> None:
        if num_channels < 1:
            raise ValueError(f'num_channels must be >= 1, got {num_channels}')
        self.num_channels = int(num_channels)
        self.count = 0
        self.mean_ = np.zeros(self.num_channels)
        self.m2 = np.zeros(self.num_channels)
        self.m3 = np.zeros(self.num_channels)
        self.m4 = np.zeros(self.num_channels)

    def update(self, features: torch.Tensor | np.ndarray) -> 'RunningMoments':
        """Add a batch ``(N, C, ...)``: every image and position is one sample per channel."""
        x = _as_channels_last_2d(features)
        if x.shape[1] != self.num_channels:
            raise ValueError(f'expected {self.num_channels} channels, got {x.shape[1]}')
        nb = x.shape[0]
        if nb == 0:
            return self
        mean_b = x.mean(axis=0)
        d = x - mean_b
        d2 = d * d
        m2b, m3b, m4b = d2.sum(0), (d2 * d).sum(0), (d2 * d2).sum(0)
        self._merge(nb, mean_b, m2b, m3b, m4b)
        return self

    def merge(self, other: 'RunningMoments') -> 'RunningMoments':
        """Fold another accumulator over the same channels into this one."""
        if other.num_channels != self.num_channels:
            raise ValueError(f'cannot merge {other.num_channels} channels into {self.num_channels}')
        if other.count:
            self._merge(other.count, other.mean_, other.m2, other.m3, other.m4)
        return self

    def _merge(self, nb: int, mean_b, m2b, m3b, m4b) -> None:
        na = self.count
        if na == 0:
            self.count, self.mean_, self.m2, self.m3, self.m4 = (
                nb, mean_b.copy(), m2b.copy(), m3b.copy(), m4b.copy())
            return
        n = na + nb
        delta = mean_b - self.mean_
        d_n = delta / n
        m2a, m3a, m4a = self.m2, self.m3, self.m4
        term = delta * d_n * na * nb  # delta^2 * na * nb / n
        m4 = (m4a + m4b + term * d_n * d_n * (na * na - na * nb + nb * nb)
              + 6.0 * d_n * d_n * (na * na * m2b + nb * nb * m2a)
              + 4.0 * d_n * (na * m3b - nb * m3a))
        m3 = m3a + m3b + term * d_n * (na - nb) + 3.0 * d_n * (na * m2b - nb * m2a)
        self.m2 = m2a + m2b + term
        self.m3, self.m4 = m3, m4
        self.mean_ = self.mean_ + d_n * nb
        self.count = n

    # ---- results ---------------------------------------------------------------------
    def _check(self) -> None:
        if self.count == 0:
            raise ValueError('no samples accumulated yet')

    @property
    def mean(self) -> np.ndarray:
        self._check()
        return self.mean_.copy()

    @property
    def variance(self) -> np.ndarray:
        self._check()
        return np.maximum(self.m2, 0.0) / self.count

    def _degenerate(self) -> np.ndarray:
        var = self.variance
        return var <= _DEGENERATE_REL_VAR * self.mean_ ** 2 + 1e-300

    @property
    def skewness(self) -> np.ndarray:
        """``sqrt(n) M_3 / M_2^1.5``; 0 for constant channels."""
        bad = self._degenerate()
        m2 = np.where(bad, 1.0, self.m2)
        return np.where(bad, 0.0, np.sqrt(self.count) * self.m3 / m2 ** 1.5)

    @property
    def kurtosis(self) -> np.ndarray:
        """Excess kurtosis ``n M_4 / M_2^2 - 3``; 0 for constant channels."""
        bad = self._degenerate()
        m2 = np.where(bad, 1.0, self.m2)
        return np.where(bad, 0.0, self.count * self.m4 / m2 ** 2 - 3.0)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{'mean', 'variance', 'skewness', 'kurtosis'}`` -> per-channel arrays."""
        return {name: getattr(self, name) for name in MOMENT_NAMES}


def moment_shift(clean: RunningMoments, distorted: RunningMoments) -> dict[str, np.ndarray]:
    """Per-channel ``distorted - clean`` of each moment (``MOMENT_NAMES`` keys)."""
    if clean.num_channels != distorted.num_channels:
        raise ValueError(f'channel mismatch: clean {clean.num_channels}, '
                         f'distorted {distorted.num_channels}')
    a, b = clean.as_dict(), distorted.as_dict()
    return {name: b[name] - a[name] for name in MOMENT_NAMES}


def summarize_shift(shift: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-layer summary: mean and median of ``|shift|`` for each moment."""
    out: dict[str, float] = {'channels': int(len(shift['mean']))}
    for name in MOMENT_NAMES:
        v = np.abs(shift[name])
        out[f'mean_abs_d_{name}'] = float(v.mean())
        out[f'median_abs_d_{name}'] = float(np.median(v))
    return out
