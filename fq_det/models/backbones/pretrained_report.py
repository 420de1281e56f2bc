"""What a plain-ResNet checkpoint cannot hold, said in one line.

ImageNet weights (``torchvision://resnet50``, a file in torchvision's layout, an exported
plain backbone) have no quantizer state: POW's exponents, HPOW's exponent branch. mmengine
loads them with ``strict=False`` and logs every such key as missing
(``missing keys in source state_dict: layer2.0.act1.alpha, ...``), which reads like a
failed load although the quantizers rightly keep their initial state, the identity.
:func:`quantizer_state_reported` replaces those keys by one line::

    39 quantizer exponents start at the identity: not in the checkpoint

Only quantizers of which the checkpoint holds *no* key are summarised; a quantizer with
some of its keys in the checkpoint and others absent stays in mmengine's list (that is a
checkpoint of another model), as does every other missing weight.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterator

from mmengine.logging import print_log
from torch import nn

from ..quantizers import HPOW, POW

__all__ = ['quantizer_state_keys', 'quantizer_state_reported', 'summary_line']

#: What the summary calls each quantizer's own state.
STATE_NOUN = {POW: 'exponents', HPOW: 'exponent branches'}


def quantizer_state_keys(module: nn.Module) -> dict[str, tuple[str, frozenset[str]]]:
    """``{layer name: (noun, its state-dict keys)}`` for every POW / HPOW in ``module``
    (inside SF-POW too), keys relative to ``module``."""
    found = {}
    for name, layer in module.named_modules():
        noun = STATE_NOUN.get(type(layer))
        if noun is not None:
            found[name] = (noun, frozenset(f'{name}.{key}' for key in layer.state_dict()))
    return found


def summary_line(nouns: list[str]) -> str:
    """``'39 quantizer exponents start at the identity: not in the checkpoint'``."""
    counts = Counter(nouns)
    what = ', '.join(f'{n} quantizer {noun}' for noun, n in sorted(counts.items()))
    return f'{what} start at the identity: not in the checkpoint'


@contextlib.contextmanager
def quantizer_state_reported(backbone: nn.Module) -> Iterator[None]:
    """For the ``with`` block, loads of a state dict into ``backbone`` (mmengine's
    ``load_state_dict`` or torch's) report the quantizers the checkpoint has no key of in
    one logged line instead of listing their keys as missing."""
    layers = quantizer_state_keys(backbone)

    def summarise(_module: nn.Module, incompatible) -> None:
        missing = set(incompatible.missing_keys)
        absent = {name: noun for name, (noun, keys) in layers.items() if keys <= missing}
        if not absent:
            return
        dropped = set().union(*(layers[name][1] for name in absent))
        incompatible.missing_keys[:] = [k for k in incompatible.missing_keys
                                        if k not in dropped]
        print_log(summary_line(list(absent.values())), logger='current')

    handle = backbone.register_load_state_dict_post_hook(summarise)
    try:
        yield
    finally:
        handle.remove()
