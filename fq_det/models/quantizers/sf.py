"""SF-r, the scaled floor ``y = floor(r*x)/r`` with a straight-through gradient."""
from __future__ import annotations

from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor, nn

from .functional import sf_quant


@MODELS.register_module()
class SF(nn.Module):
    """Scaled floor quantizer ``y = floor(r * x) / r``, ``dy/dx = 1`` (straight through).

    Args:
        resolution: ``r > 0`` (the paper uses 10 and 100).
        with_relu: compute ``floor(r * max(x, 0)) / r`` in one fused op (what the
            quantized backbones use in place of their ReLUs).
        inplace: overwrite the input (like ``nn.ReLU(inplace=True)``).
        in_channels, postfix: accepted (and ignored) for mmcv's ``build_plugin_layer``.
    """

    _abbr_ = 'sf'

    def __init__(self,
                 resolution: float = 10.0,
                 with_relu: bool = False,
                 inplace: bool = False,
                 in_channels: Optional[int] = None,
                 postfix=None) -> None:
        super().__init__()
        if isinstance(resolution, bool) or not isinstance(resolution,
                                                          (int, float)) or not resolution > 0:
            raise ValueError(
                f'SF resolution must be a number > 0 (e.g. 10 or 100), got {resolution!r}')
        self.resolution = float(resolution)
        self.with_relu = bool(with_relu)
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return sf_quant(x, self.resolution, relu=self.with_relu, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f'resolution={self.resolution:g}, with_relu={self.with_relu}, inplace={self.inplace}'
