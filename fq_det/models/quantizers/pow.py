"""POW-k: power function with learnable per-channel (and per-segment) exponents.

For ``x >= 0``, channel ``c``, breakpoints ``b_j = j*w`` (``j = 0..k-1``, last segment
unbounded)::

    f(x) = b_j + w * ((x - b_j) / w) ** p_cj,   f(-x) = -f(x)

with ``p = 1 + alpha`` (``exponent='offset'``, the default) or ``p = alpha``
(``exponent='direct'``), see :mod:`.exponents`. ``alpha`` starts at the identity
(``p = 1``), has shape ``(C,)`` for ``k = 1`` and ``(C, k)`` for ``k > 1`` (one exponent
per channel and segment: the supplement's POW-k learns a separate curve per split), and is
clamped to ``alpha_range`` in the forward pass (default: ``p`` in ``[0.5, 5]`` for the
offset reading, ``[0.01, 5]`` for the direct one).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .exponents import ExponentReading, ExponentReadingMixin, get_reading
from .functional import pow_quant
from .regularizer import AlphaRegularizedMixin, build_alpha_regularizer


def resolve_channels(layer: str, channels: Optional[int], in_channels: Optional[int]) -> int:
    """``channels`` or mmcv's plugin argument ``in_channels``; a positive int."""
    if channels is None:
        channels = in_channels
    elif in_channels is not None and in_channels != channels:
        raise ValueError(f'{layer}: channels={channels} and in_channels={in_channels} disagree')
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(
            f'{layer} needs channels (or in_channels) = a positive int, got {channels!r}')
    return channels


def check_split_args(layer: str, num_splits, split_width, alpha_range,
                     reading: ExponentReading) -> Tuple[int, float, Tuple[float, float]]:
    """Checked ``(k, w, alpha_range)``; ``alpha_range=None``: the reading's default."""
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 1:
        raise ValueError(f'{layer} num_splits must be an int >= 1 (the paper uses 1, 2, 4, 8, 16), '
                         f'got {num_splits!r}')
    if isinstance(split_width, bool) or not isinstance(split_width,
                                                       (int, float)) or not split_width > 0:
        raise ValueError(f'{layer} split_width must be a number > 0, got {split_width!r}')
    alpha_range = reading.check_range(layer, reading.default_range if alpha_range is None
                                      else alpha_range)
    return num_splits, float(split_width), alpha_range


@MODELS.register_module()
class POW(ExponentReadingMixin, AlphaRegularizedMixin, nn.Module):
    """POW-k quantizer with learnable exponents ``p = 1 + alpha`` or ``p = alpha``.

    Args:
        channels: number of channels ``C`` (dim 1 of the input).
        num_splits: ``k``, the number of segments.
        split_width: ``w``, the segment width (fixed unless ``learnable_width``).
        alpha_reg: ``dict(type='L1'|'L2', weight=w)`` or None.
        learnable_width: learn ``w`` (one scalar parameter ``width``, kept >= 1e-3).
        alpha_range: clamp of ``alpha`` in the forward pass (None: the reading's default).
        exponent: ``'offset'`` (``p = 1 + alpha``) or ``'direct'`` (``p = alpha``; the
            penalty then drives ``p`` toward 0, where POW quantizes).
        with_relu: compute ``f(max(x, 0))`` in one fused op (the backbones' activations).
        inplace: overwrite the input (only with ``with_relu``).
        in_channels, postfix: mmcv ``build_plugin_layer`` arguments (``in_channels`` is
            an alias of ``channels``; ``postfix`` is ignored).
    """

    _abbr_ = 'pow'

    def __init__(self,
                 channels: Optional[int] = None,
                 num_splits: int = 1,
                 split_width: float = 1.0,
                 alpha_reg: Optional[dict] = None,
                 learnable_width: bool = False,
                 alpha_range: Optional[Sequence[float]] = None,
                 exponent: str = 'offset',
                 with_relu: bool = False,
                 inplace: bool = False,
                 in_channels: Optional[int] = None,
                 postfix=None) -> None:
        super().__init__()
        self.channels = resolve_channels('POW', channels, in_channels)
        self.reading = get_reading('POW', exponent)
        self.num_splits, self.split_width, self.alpha_range = check_split_args(
            'POW', num_splits, split_width, alpha_range, self.reading)
        self.alpha_reg = build_alpha_regularizer(alpha_reg)
        shape = (self.channels, ) if self.num_splits == 1 else (self.channels, self.num_splits)
        self.alpha = nn.Parameter(torch.full(shape, self.reading.identity))
        self.learnable_width = bool(learnable_width)
        if self.learnable_width:
            self.width = nn.Parameter(torch.tensor(self.split_width))
        self.with_relu, self.inplace = bool(with_relu), bool(inplace)

    def init_weights(self) -> None:
        """Identity at initialisation (also after mmengine's generic initialisers)."""
        nn.init.constant_(self.alpha, self.reading.identity)
        if self.learnable_width:
            nn.init.constant_(self.width, self.split_width)

    def exponents(self) -> Tensor:
        """``p`` shaped ``(1, C, k)``."""
        return self.exponent_of(self.alpha).view(1, self.channels, self.num_splits)

    def current_width(self):
        return self.width.clamp(min=1e-3) if self.learnable_width else self.split_width

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f'POW built for {self.channels} channels got input of shape {tuple(x.shape)}')
        self._check_alpha_reg_handled()
        return pow_quant(x,
                         self.alpha.view(1, self.channels, self.num_splits),
                         self.current_width(),
                         self.num_splits,
                         relu=self.with_relu,
                         inplace=self.inplace,
                         clamp=(*self.alpha_range, self.reading.offset))

    def alpha_penalty(self) -> Tensor:
        if self.alpha_reg is None:
            return self.alpha.new_zeros(())
        return self.alpha_reg(self.alpha)

    def extra_repr(self) -> str:
        return (
            f'channels={self.channels}, num_splits={self.num_splits}, '
            f'split_width={self.split_width:g}, '
            f'learnable_width={self.learnable_width}, exponent={self.reading.name!r}, '
            f'alpha_range={self.alpha_range}, alpha_reg={self.alpha_reg}, with_relu={self.with_relu}, inplace={self.inplace}')
