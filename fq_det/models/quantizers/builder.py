"""``build_quant_activation``: the activation that replaces a ResNet block's ReLU."""
from __future__ import annotations

import difflib
import inspect
from typing import Iterable, Optional, Tuple

from torch import nn

from .hpow import HPOW
from .pow import POW
from .sf import SF
from .sfpow import SFPOW

QUANTIZERS = {'SF': SF, 'POW': POW, 'HPOW': HPOW, 'SFPOW': SFPOW}
#: where a backbone puts its quantizers: fused with each ReLU (``q(max(x, 0))``), or in place
#: of it (``q(x)``, sign-preserving: ``f(-x) = -f(x)``, the main paper's
#: ``U = psi(|W*X|, alpha) * sign(W*X)``)
POSITIONS = ('after_relu', 'replace_relu')
#: set by the block, never by ``quant_cfg`` (mmcv's plugin arguments included)
_RESERVED = ('with_relu', 'inplace', 'channels', 'in_channels', 'postfix')


def unknown_name_message(what: str, name, choices: Iterable[str]) -> str:
    """``unknown <what> 'x' (did you mean 'y'?); valid: 'a', 'b'`` (difflib's close matches)."""
    choices = list(choices)
    close = difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ''
    return f'unknown {what} {name!r}{hint}; valid: {", ".join(repr(c) for c in choices)}'


def quant_cfg_keys(qtype: str) -> Tuple[str, ...]:
    """The keys ``quant_cfg`` may set for quantizer ``qtype`` (besides ``type``)."""
    params = inspect.signature(QUANTIZERS[qtype].__init__).parameters
    return tuple(k for k in params if k != 'self' and k not in _RESERVED)


def check_position(position: str) -> str:
    if position not in POSITIONS:
        raise ValueError(unknown_name_message('quant_position', position, POSITIONS))
    return position


def build_quant_activation(quant_cfg: Optional[dict], channels: int,
                           position: str = 'after_relu') -> nn.Module:
    """``nn.ReLU(inplace=True)`` for ``None``; else the quantizer of
    ``quant_cfg = dict(type='SF'|'POW'|'HPOW'|'SFPOW', **layer_args)``, at ``position``
    ``'after_relu'`` fused with the ReLU (``y = q(max(x, 0))`` in one autograd op, in place)
    or ``'replace_relu'`` (``y = q(x)``, sign-preserving)."""
    check_position(position)
    if quant_cfg is None:
        return nn.ReLU(inplace=True)
    if not isinstance(quant_cfg, dict):
        raise TypeError(
            f"quant_cfg must be None or dict(type='SF'|'POW'|'HPOW'|'SFPOW', ...), got {quant_cfg!r}")
    cfg = dict(quant_cfg)
    qtype = cfg.pop('type', None)
    if qtype not in QUANTIZERS:
        raise ValueError(unknown_name_message('quantizer type', qtype, QUANTIZERS))
    reserved = [k for k in _RESERVED if k in cfg]
    if reserved:
        raise ValueError(f'quant_cfg must not set {reserved}: the activation is always the fused, '
                         'in-place ReLU + quantizer and its channels come from the block')
    valid = quant_cfg_keys(qtype)
    unknown = [k for k in cfg if k not in valid]
    if unknown:
        raise ValueError(f'{unknown_name_message(f"{qtype} quant_cfg key", unknown[0], valid)} '
                         f'(and type)')
    relu = position == 'after_relu'
    if qtype == 'SF':
        return SF(**cfg, with_relu=relu, inplace=True)
    return QUANTIZERS[qtype](channels=channels, **cfg, with_relu=relu, inplace=True)
