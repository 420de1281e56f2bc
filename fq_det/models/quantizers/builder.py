"""``build_quant_activation``: the activation that replaces a ResNet block's ReLU."""
from __future__ import annotations

from typing import Optional

from torch import nn

from .hpow import HPOW
from .pow import POW
from .sf import SF

QUANTIZERS = {'SF': SF, 'POW': POW, 'HPOW': HPOW}
_RESERVED = ('with_relu', 'inplace', 'channels', 'in_channels')


def build_quant_activation(quant_cfg: Optional[dict], channels: int) -> nn.Module:
    """``nn.ReLU(inplace=True)`` for ``None``; else the quantizer of
    ``quant_cfg = dict(type='SF'|'POW'|'HPOW', **layer_args)`` fused with the ReLU
    (``y = q(max(x, 0))`` in one autograd op, in place)."""
    if quant_cfg is None:
        return nn.ReLU(inplace=True)
    if not isinstance(quant_cfg, dict):
        raise TypeError(
            f"quant_cfg must be None or dict(type='SF'|'POW'|'HPOW', ...), got {quant_cfg!r}")
    cfg = dict(quant_cfg)
    qtype = cfg.pop('type', None)
    if qtype not in QUANTIZERS:
        raise ValueError(f'unknown quantizer type {qtype!r}; valid types: {tuple(QUANTIZERS)}')
    reserved = [k for k in _RESERVED if k in cfg]
    if reserved:
        raise ValueError(f'quant_cfg must not set {reserved}: the activation is always the fused, '
                         'in-place ReLU + quantizer and its channels come from the block')
    if qtype == 'SF':
        return SF(**cfg, with_relu=True, inplace=True)
    return QUANTIZERS[qtype](channels=channels, **cfg, with_relu=True, inplace=True)
