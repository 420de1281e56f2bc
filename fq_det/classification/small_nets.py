"""The supplement's small classification networks, with optional quantized activations.

Both are backbones in mmpretrain's MODELS, used inside its ``ImageClassifier``:

* :class:`CifarSmallNet` (supplement Table 2, CIFAR-10/100):
  conv3x3-32 BN ReLU, maxpool 2x2/2, [conv3x3-64 BN ReLU(+quantizer)] x 2, maxpool 2x2/2,
  conv3x3-num_classes; global average pooling of its output gives the logits
  (``neck=GlobalAveragePooling``, ``head=ClsHead``: no linear layer).
* :class:`Plain10` (supplement Table 4, ImageNet): conv7x7-64, maxpool 3x3/2, then four
  stages of [conv3x3-C stride 2, conv3x3-C] with C = 64, 128, 256, 512, every conv followed
  by BN-ReLU (+quantizer); global pooling and an fc layer (``GlobalAveragePooling`` +
  ``LinearClsHead``) follow.

Quantizers come from ``fq_det.models.build_quant_activation(quant_cfg, channels)``, so
``quant_cfg=dict(type='SF'|'POW'|'HPOW', **layer_args)`` (``alpha_reg`` included) works as
in the ResNet backbones; ``quant_cfg=None`` gives plain ReLUs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn


def _activation(quant_cfg: dict | None, channels: int) -> nn.Module:
    """ReLU, fused with the configured quantizer when given (the ResNet backbones' builder)."""
    from fq_det.models import build_quant_activation
    return build_quant_activation(quant_cfg, channels)


def conv_bn_act(in_channels: int,
                out_channels: int,
                kernel_size: int = 3,
                stride: int = 1,
                quant_cfg: dict | None = None,
                norm_cfg: dict | None = None) -> nn.Sequential:
    """conv(k, stride, pad=k//2, no bias) -> BN -> ReLU (+ quantizer)."""
    norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
    conv = build_conv_layer(
        None,
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        bias=False)
    _, norm = build_norm_layer(norm_cfg, out_channels)
    return nn.Sequential(conv, norm, _activation(quant_cfg, out_channels))


@MODELS.register_module()
class CifarSmallNet(BaseModule):
    """Supplement Table 2 network; the quantizer sits in the middle block (both conv-64).

    Args:
        num_classes: channels of the last conv (its pooled output is the logits).
        quant_cfg: quantizer for the middle block (``None``: the paper's "Base" model).
        in_channels, base_channels: input channels; width of the first conv (64 = 2x it).
        quant_first: also quantize after the first conv (not in the paper; default False).
    """

    def __init__(self,
                 num_classes: int = 10,
                 quant_cfg: dict | None = None,
                 in_channels: int = 3,
                 base_channels: int = 32,
                 quant_first: bool = False,
                 norm_cfg: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        mid = 2 * base_channels
        self.num_classes = num_classes
        self.stem = conv_bn_act(
            in_channels,
            base_channels,
            3,
            quant_cfg=quant_cfg if quant_first else None,
            norm_cfg=norm_cfg)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.middle = nn.Sequential(
            conv_bn_act(base_channels, mid, 3, quant_cfg=quant_cfg, norm_cfg=norm_cfg),
            conv_bn_act(mid, mid, 3, quant_cfg=quant_cfg, norm_cfg=norm_cfg))
        self.pool2 = nn.MaxPool2d(2, 2)
        self.classifier_conv = nn.Conv2d(mid, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        """(N, 3, H, W) -> ((N, num_classes, H/4, W/4),): class maps, pooled by the classifier."""
        x = self.pool1(self.stem(x))
        x = self.pool2(self.middle(x))
        return (self.classifier_conv(x), )


@MODELS.register_module()
class Plain10(BaseModule):
    """Supplement Table 4 plain network (9 conv layers + the classifier's fc = 10 layers).

    Args:
        quant_cfg: quantizer placed after the ReLUs of the stages chosen by
            ``stage_with_quant`` (``None``: plain Plain-10).
        stage_with_quant: one flag per stage (64, 128, 256, 512 channels).
        quant_stem: also quantize after the 7x7 stem conv.
        stem_stride: the table gives stride 1 for the 7x7 conv (224 px -> 7x7 final map);
            use 2 for a ResNet-like stem.
        base_channels: stage widths are base_channels * (1, 2, 4, 8); the table uses 64.
        out_indices: stages whose outputs are returned.
    """

    def __init__(self,
                 quant_cfg: dict | None = None,
                 stage_with_quant: Sequence[bool] = (True, True, True, True),
                 quant_stem: bool = False,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 stem_stride: int = 1,
                 out_indices: Sequence[int] = (3, ),
                 norm_cfg: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(stage_with_quant) != 4:
            raise ValueError(
                f'stage_with_quant needs 4 flags (one per stage), got {stage_with_quant}')
        if any(i not in range(4) for i in out_indices):
            raise ValueError(f'out_indices must be in 0..3, got {out_indices}')
        self.out_indices = tuple(out_indices)
        self.stem = conv_bn_act(
            in_channels,
            base_channels,
            7,
            stride=stem_stride,
            quant_cfg=quant_cfg if quant_stem else None,
            norm_cfg=norm_cfg)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stage_names = []
        in_ch = base_channels
        for i, with_quant in enumerate(stage_with_quant):
            out_ch = base_channels * 2**i
            q = quant_cfg if with_quant else None
            stage = nn.Sequential(
                conv_bn_act(in_ch, out_ch, 3, stride=2, quant_cfg=q, norm_cfg=norm_cfg),
                conv_bn_act(out_ch, out_ch, 3, stride=1, quant_cfg=q, norm_cfg=norm_cfg))
            name = f'layer{i + 1}'
            self.add_module(name, stage)
            self.stage_names.append(name)
            in_ch = out_ch
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.stem(x))
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
