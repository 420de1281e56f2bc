"""ResNet backbones with SF / POW / HPOW after the ReLUs of the chosen stages.

The blocks subclass MMDetection's ``BasicBlock``/``Bottleneck``: every ReLU position
gets its own activation module built by :func:`build_quant_activation` (``act1``,
``act2`` and, for Bottleneck, ``act3`` after the residual add), a fused
``ReLU + quantizer``. All other parameter names equal ``mmdet`` ``ResNet``'s, so
``init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')`` and plain
ResNet state dicts load with only the quantizers' own keys missing (logged in one line:
``39 quantizer exponents start at the identity: not in the checkpoint``). The stem's ReLU
stays a plain ReLU.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch.utils.checkpoint as cp
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmdet.registry import MODELS
from torch import Tensor

from ..quantizers.builder import (QUANTIZERS, build_quant_activation, check_position,
                                  unknown_name_message)
from .pretrained_report import quantizer_state_reported


class QuantBasicBlock(BasicBlock):
    """``BasicBlock`` whose two ReLUs are ``act1`` (after bn1) and ``act2`` (after the add)."""

    def __init__(self, *args, quant_cfg: Optional[dict] = None,
                 quant_position: str = 'after_relu', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.relu
        self.act1 = build_quant_activation(quant_cfg, self.conv1.out_channels, quant_position)
        self.act2 = build_quant_activation(quant_cfg, self.conv2.out_channels, quant_position)

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x: Tensor) -> Tensor:
            out = self.act1(self.norm1(self.conv1(x)))
            out = self.norm2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            out += identity
            return out

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.act2(out)


class QuantBottleneck(Bottleneck):
    """``Bottleneck`` whose three ReLUs are ``act1``, ``act2`` and ``act3`` (after the add);
    block ``plugins`` (after_conv1/2/3) still work."""

    def __init__(self, *args, quant_cfg: Optional[dict] = None,
                 quant_position: str = 'after_relu', **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.relu
        self.act1 = build_quant_activation(quant_cfg, self.conv1.out_channels, quant_position)
        self.act2 = build_quant_activation(quant_cfg, self.conv2.out_channels, quant_position)
        self.act3 = build_quant_activation(quant_cfg, self.conv3.out_channels, quant_position)

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x: Tensor) -> Tensor:
            out = self.act1(self.norm1(self.conv1(x)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.act2(self.norm2(self.conv2(out)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.norm3(self.conv3(out))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv3_plugin_names)
            identity = x if self.downsample is None else self.downsample(x)
            out += identity
            return out

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.act3(out)


QUANT_BLOCKS = {BasicBlock: QuantBasicBlock, Bottleneck: QuantBottleneck}


@MODELS.register_module()
class ResNetQuant(ResNet):
    """mmdet ``ResNet`` with quantized activations in the chosen stages.

    Args:
        quant_cfg: the quantizer's arguments; ``type`` ('SF', 'POW', 'HPOW', 'SFPOW') is
            required here and fixed by the subclasses ``ResNetSF``/``ResNetPOW``/
            ``ResNetHPOW``/``ResNetSFPOW``. ``channels`` comes from the block.
        stage_with_quant: one bool per stage (default: all stages).
        quant_position: ``'after_relu'`` (the quantizer fused with each ReLU of a quantized
            block) or ``'replace_relu'`` (in place of each ReLU, sign-preserving ``q(x)``:
            the block then has no ReLU).
        **kwargs: every argument of ``mmdet.models.backbones.ResNet``.
    """

    quant_type: Optional[str] = None

    def __init__(self,
                 depth: int,
                 quant_cfg: Optional[dict] = None,
                 stage_with_quant: Optional[Sequence[bool]] = None,
                 quant_position: str = 'after_relu',
                 num_stages: int = 4,
                 **kwargs) -> None:
        name = type(self).__name__
        cfg = dict(quant_cfg or {})
        if self.quant_type is not None:
            if cfg.setdefault('type', self.quant_type) != self.quant_type:
                raise ValueError(f"{name} quantizes with {self.quant_type!r}; quant_cfg type "
                                 f"{cfg['type']!r} is not allowed (omit 'type' or use ResNetQuant)")
        elif cfg.get('type') not in QUANTIZERS:
            raise ValueError(f'{name} needs quant_cfg=dict(type=..., ...): '
                             + unknown_name_message('quantizer type', cfg.get('type'), QUANTIZERS))
        if stage_with_quant is None:
            stage_with_quant = (True, ) * num_stages
        if (not isinstance(stage_with_quant, (tuple, list)) or len(stage_with_quant) != num_stages
                or not all(isinstance(v, bool) for v in stage_with_quant)):
            raise ValueError(f'{name}: stage_with_quant must be a tuple of {num_stages} bools '
                             f'(one per stage, num_stages={num_stages}), got {stage_with_quant!r}')
        try:
            check_position(quant_position)
        except ValueError as err:
            raise ValueError(f'{name}: {err}') from None
        build_quant_activation(cfg, 8)  # validate the layer arguments before building the net
        self.quant_cfg = cfg
        self.quant_position = quant_position
        self.stage_with_quant = tuple(stage_with_quant)
        super().__init__(depth, num_stages=num_stages, **kwargs)

    def make_res_layer(self, **kwargs):
        """Use the quantized block in stages with ``stage_with_quant[i]``."""
        stage = len(self.res_layers)  # ResNet.__init__ appends each stage after building it
        if self.stage_with_quant[stage]:
            block = kwargs['block']
            if block not in QUANT_BLOCKS:
                raise TypeError(
                    f'{type(self).__name__} has no quantized version of block {block.__name__}; '
                    f'supported: {[b.__name__ for b in QUANT_BLOCKS]}')
            kwargs.update(block=QUANT_BLOCKS[block], quant_cfg=self.quant_cfg,
                          quant_position=self.quant_position)
        return super().make_res_layer(**kwargs)

    def init_weights(self) -> None:
        """mmdet's initialisation (``init_cfg``: ImageNet weights, ...); the quantizer state
        that a plain-ResNet checkpoint cannot hold is logged in one line
        (:mod:`.pretrained_report`), not as missing keys."""
        with quantizer_state_reported(self):
            super().init_weights()


@MODELS.register_module()
class ResNetSF(ResNetQuant):
    """ResNet + SF-r (``quant_cfg=dict(resolution=10)``)."""
    quant_type = 'SF'


@MODELS.register_module()
class ResNetPOW(ResNetQuant):
    """ResNet + POW-k (``quant_cfg=dict(num_splits=1, split_width=1.0, alpha_reg=...)``)."""
    quant_type = 'POW'


@MODELS.register_module()
class ResNetHPOW(ResNetQuant):
    """ResNet + HPOW (``quant_cfg=dict(num_splits=1, reduction=16, alpha_reg=...)``)."""
    quant_type = 'HPOW'


@MODELS.register_module()
class ResNetSFPOW(ResNetQuant):
    """ResNet + SF-r then POW-k (``quant_cfg=dict(resolution=10, num_splits=1, ...)``)."""
    quant_type = 'SFPOW'
