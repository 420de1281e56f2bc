"""Test oracles for POW-k, independent of the package's fused implementation, and the inputs
the implementations are compared on."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def pow_reference(x: Tensor, p: Tensor, width=1.0, num_splits: int = 1, relu: bool = False) -> Tensor:
    """POW-k written with plain differentiable torch ops (no blocks, no kernels, no saved-output
    tricks): ``f(a) = j*w + w*(a/w - j)**p_j`` with ``j = min(floor(a/w), k-1)``."""
    k = num_splits
    a = x.clamp(min=0) if relu else x.abs()
    w = width
    seg = torch.clamp(torch.floor(a / w), 0, k - 1).detach()
    shape = (p.shape[0], p.shape[1], k) + (1, ) * (x.dim() - 2)
    pe = torch.gather(
        p.view(shape).expand(x.shape[0], -1, -1, *x.shape[2:]), 2,
        seg.long().unsqueeze(2)).squeeze(2)
    t = a / w - seg
    y = seg * w + w * t.pow(pe)
    return y if relu else torch.copysign(y, x)


def pow_closed_form(x: np.ndarray, alpha: np.ndarray, w: float, k: int, relu: bool) -> np.ndarray:
    """POW-k (docs/quantizers.md), element by element in numpy float64."""
    alpha = alpha.reshape(alpha.shape[0], k)
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        v = max(x[idx], 0.0) if relu else x[idx]
        a = abs(v)
        j = min(int(math.floor(a / w)), k - 1)
        p = 1.0 + alpha[idx[1], j]
        f = j * w + w * ((a - j * w) / w)**p
        out[idx] = math.copysign(f, v) if v != 0 else 0.0
    return out


def parity_inputs(k: int, batch_exponents: bool, seed: int = 0):
    """``(x, p, g)``: inputs with zeros, tiny values, breakpoints and 1e4, exponents ``p``
    (``(3 or 1, 6, k)``) with the offset clamp's limits, and an upstream gradient."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, 11, 13, generator=gen) * 2
    x.view(-1)[:40] = torch.tensor([0.0, -0.0, 1e-35, 1e-30, 1e-7, 1.0, 2.0, 3.0, 0.7, 1.4] * 4)
    x.view(-1)[40:44] = torch.tensor([1e4, 5e3, -1e4, 15.0])
    alpha = torch.empty(3 if batch_exponents else 1, 6, k).uniform_(-0.5, 1.5, generator=gen)
    alpha[0, 0] = -0.5  # the clamp limits
    alpha[0, 1] = 4.0
    return x, 1 + alpha, torch.randn(x.shape, generator=gen)
