"""HPOW: POW-k whose exponents are predicted per sample and channel from the features.

``alpha = conv2(relu(conv1(s)))`` with ``s`` the per-channel statistics of the features
``z`` being quantized (``max(x, 0)`` when fused with the ReLU): ``statistics='mean'``,
``s = mean(z)`` over the spatial dims (``C`` values), or ``statistics='mean_std'``,
``s = [mean(z), std(z)]`` (``2C`` values, the main paper's ``F_d(mu_d, sigma_d)``);
``conv1: -> max(1, C // reduction)``, ``conv2: -> C*k`` with zero weights and the
identity's bias (HPOW starts as the identity), then ``y = POW_k(x; p)`` with
``p = 1 + clamp(alpha)`` or ``p = clamp(alpha)`` (``exponent``, see :mod:`.exponents`).
The mean passes its gradient to the features; the standard deviation enters as a constant
(its gradient would need the features themselves, which are not saved: only ``y`` is). The two 1x1 convolutions act on a 1x1 map, so they are
held as plain parameters (``reduce_weight/bias``, ``expand_weight/bias``) and applied as
linear maps: generic initialisers that match layer types (mmengine's ``Kaiming`` on
``Conv2d``, ``Normal`` on ``Linear``) then cannot undo the zero initialisation. The last
prediction is kept, detached, in ``last_alpha`` (``(N, C)`` for ``k = 1``, ``(N, C, k)`` otherwise).
"""
from __future__ import annotations

from typing import Optional, Sequence

import math

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from .exponents import ExponentReadingMixin, get_reading
from .functional import channel_std, pow_quant, relu_mean
from .pow import check_split_args, resolve_channels
from .regularizer import AlphaRegularizedMixin, build_alpha_regularizer

STATISTICS = ('mean', 'mean_std')


@MODELS.register_module()
class HPOW(ExponentReadingMixin, AlphaRegularizedMixin, nn.Module):
    """Data-dependent POW-k (see module docstring).

    Args:
        channels: number of channels ``C``.
        num_splits: ``k``; split_width: ``w`` (fixed).
        reduction: channel reduction of the alpha branch.
        alpha_reg: ``dict(type='L1'|'L2', weight=w)`` on the predicted alphas (sum over
            channels and splits, mean over the batch) or None.
        statistics: ``'mean'`` or ``'mean_std'``, what the branch reads per channel.
        alpha_range, exponent, with_relu, inplace, in_channels, postfix: as for :class:`POW`.
    """

    _abbr_ = 'hpow'
    _param_key = 'expand_weight'

    def __init__(self,
                 channels: Optional[int] = None,
                 num_splits: int = 1,
                 split_width: float = 1.0,
                 reduction: int = 16,
                 alpha_reg: Optional[dict] = None,
                 alpha_range: Optional[Sequence[float]] = None,
                 exponent: str = 'offset',
                 statistics: str = 'mean',
                 with_relu: bool = False,
                 inplace: bool = False,
                 in_channels: Optional[int] = None,
                 postfix=None) -> None:
        super().__init__()
        self.channels = resolve_channels('HPOW', channels, in_channels)
        self.reading = get_reading('HPOW', exponent)
        self.num_splits, self.split_width, self.alpha_range = check_split_args(
            'HPOW', num_splits, split_width, alpha_range, self.reading)
        if statistics not in STATISTICS:
            raise ValueError(f'HPOW statistics must be one of {", ".join(map(repr, STATISTICS))}'
                             f', got {statistics!r}')
        self.statistics = statistics
        inputs = self.channels * (2 if statistics == 'mean_std' else 1)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f'HPOW reduction must be an int >= 1, got {reduction!r}')
        self.reduction = reduction
        self.alpha_reg = build_alpha_regularizer(alpha_reg)
        hidden = max(1, self.channels // reduction)
        self.reduce_weight = nn.Parameter(torch.empty(hidden, inputs))
        self.reduce_bias = nn.Parameter(torch.empty(hidden))
        self.expand_weight = nn.Parameter(torch.empty(self.channels * self.num_splits, hidden))
        self.expand_bias = nn.Parameter(torch.empty(self.channels * self.num_splits))
        bound = 1 / math.sqrt(inputs)  # nn.Conv2d's default initialisation
        nn.init.kaiming_uniform_(self.reduce_weight, a=math.sqrt(5))
        nn.init.uniform_(self.reduce_bias, -bound, bound)
        self.with_relu, self.inplace = bool(with_relu), bool(inplace)
        self.last_alpha: Optional[Tensor] = None
        self._alpha_for_reg: Optional[Tensor] = None
        self.init_weights()

    def init_weights(self) -> None:
        """Zero the last conv's weights, its bias at the identity: HPOW starts as the identity."""
        nn.init.zeros_(self.expand_weight)
        nn.init.constant_(self.expand_bias, self.reading.identity)

    def predict_alpha(self, x: Tensor, holder: dict) -> Tensor:
        """Unclamped alpha ``(N, C, k)`` from the (post-ReLU) features' statistics."""
        n, c = x.shape[:2]
        if self.with_relu:
            pooled = relu_mean(x, holder)
        else:
            pooled = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        if self.statistics == 'mean_std':
            pooled = torch.cat([pooled, channel_std(x, relu=self.with_relu).to(pooled.dtype)], 1)
        hidden = F.relu(
            F.linear(pooled.to(self.reduce_weight.dtype), self.reduce_weight, self.reduce_bias))
        raw = F.linear(hidden, self.expand_weight, self.expand_bias).view(n, c, self.num_splits)
        return raw.float() if raw.dtype in (torch.float16, torch.bfloat16) else raw

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f'HPOW built for {self.channels} channels got input of shape {tuple(x.shape)}')
        self._check_alpha_reg_handled()
        holder: dict = {}
        raw = self.predict_alpha(x, holder)
        alpha = raw.detach().clamp(*self.alpha_range)
        self.last_alpha = alpha[..., 0] if self.num_splits == 1 else alpha
        keep = self.alpha_reg is not None and self.training and torch.is_grad_enabled()
        self._alpha_for_reg = raw if keep else None
        y = pow_quant(x,
                      raw,
                      self.split_width,
                      self.num_splits,
                      relu=self.with_relu,
                      inplace=self.inplace,
                      holder=holder if self.with_relu else None,
                      clamp=(*self.alpha_range, self.reading.offset))
        if self.with_relu and torch.is_grad_enabled():
            holder['out'] = y.detach()  # ReLU mask for the pooling's backward
        return y

    def alpha_penalty(self) -> Tensor:
        """Penalty of the alphas predicted in the last training forward (0 if none)."""
        if self.alpha_reg is None or self._alpha_for_reg is None:
            return self.expand_weight.new_zeros(())
        return self.alpha_reg(self._alpha_for_reg) / self._alpha_for_reg.shape[0]

    def extra_repr(self) -> str:
        return (
            f'channels={self.channels}, num_splits={self.num_splits}, '
            f'split_width={self.split_width:g}, reduction={self.reduction}, '
            f'statistics={self.statistics!r}, exponent={self.reading.name!r}, '
            f'alpha_range={self.alpha_range}, alpha_reg={self.alpha_reg}, '
            f'with_relu={self.with_relu}, inplace={self.inplace}')
