"""SF-POW: the scaled floor, then POW-k, ``y = POW_k(SF_r(x))`` (the main paper's +SF-POW).

SF rounds the features down to multiples of ``1/r``; POW then bends each segment with its
learnable exponents (best with ``exponent='direct'``, whose penalty drives them toward the
staircase). Fused with the ReLU, SF runs in place and keeps its output for its backward
(the ReLU mask is in its sign bits), so SF-POW holds one more activation-sized tensor than
POW alone; POW reads SF's output and writes a new one.
"""
from __future__ import annotations

from typing import Optional, Sequence

from mmdet.registry import MODELS
from torch import Tensor, nn

from .pow import POW
from .sf import SF


@MODELS.register_module()
class SFPOW(nn.Module):
    """``POW_k(SF_r(x))``: ``resolution`` for SF, every other argument as for :class:`POW`
    (its exponents are ``self.pow.alpha``)."""

    _abbr_ = 'sfpow'

    def __init__(self,
                 channels: Optional[int] = None,
                 resolution: float = 10.0,
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
        self.sf = SF(resolution, with_relu=with_relu, inplace=inplace)
        self.pow = POW(channels, num_splits, split_width, alpha_reg, learnable_width,
                       alpha_range, exponent, with_relu=with_relu, inplace=False,
                       in_channels=in_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.pow(self.sf(x))
