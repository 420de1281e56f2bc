"""Regularisation of the POW/HPOW exponents ``alpha`` toward 0 (identity channels).

``alpha_reg=dict(type='L1', weight=w)`` gives ``w * sum|alpha|`` (most alphas become
exactly or nearly 0), ``type='L2'`` gives ``w * sum(alpha**2)`` (a smooth pull). HPOW
regularises its predicted alphas, summed over channels and splits, mean over the batch.

The penalty reaches the optimiser as the loss ``loss_alpha_reg``, added to the detector's
loss dict by :class:`fq_det.engine.AlphaRegularizationHook`; a layer with a regulariser
that finds no hook at its first training forward warns once.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

REG_TYPES = ('L1', 'L2')
_warned = False

MISSING_HOOK_MESSAGE = (
    'A POW/HPOW layer has alpha_reg set, but no AlphaRegularizationHook adds its penalty '
    'to the loss, so alpha is not regularised. Add '
    "custom_hooks = [dict(type='AlphaRegularizationHook')] "
    "(and custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)) to the config, "
    'or, outside mmengine, add fq_det.models.alpha_penalty(model) to your loss and call '
    'fq_det.models.mark_alpha_reg_handled(model).')


class AlphaRegularizer:
    """``L1``: ``weight * sum|alpha|``; ``L2``: ``weight * sum(alpha**2)``."""

    def __init__(self, type: str = 'L1', weight: float = 1e-4) -> None:  # noqa: A002
        if type not in REG_TYPES:
            raise ValueError(f'unknown alpha regulariser type {type!r}; valid types: {REG_TYPES}')
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f'alpha regulariser weight must be a number >= 0, got {weight!r}')
        self.type, self.weight = type, float(weight)

    def __call__(self, alpha: Tensor) -> Tensor:
        alpha = alpha.float()
        value = alpha.abs().sum() if self.type == 'L1' else alpha.square().sum()
        return value * self.weight

    def __repr__(self) -> str:
        return f"AlphaRegularizer(type='{self.type}', weight={self.weight:g})"


def build_alpha_regularizer(cfg: Union[dict, AlphaRegularizer, None]) -> Optional[AlphaRegularizer]:
    """``None`` -> ``None``; ``dict(type='L1'|'L2', weight=w)`` -> :class:`AlphaRegularizer`."""
    if cfg is None or isinstance(cfg, AlphaRegularizer):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f"alpha_reg must be None or dict(type='L1'|'L2', weight=...), got {cfg!r}")
    unknown = set(cfg) - {'type', 'weight'}
    if unknown:
        raise ValueError(f'unknown alpha_reg keys {sorted(unknown)}; valid keys: type, weight')
    return AlphaRegularizer(**cfg)


class AlphaRegularizedMixin:
    """Shared by POW and HPOW: holds ``alpha_reg`` and warns once if no hook uses it."""

    alpha_reg: Optional[AlphaRegularizer] = None
    _alpha_reg_handled: bool = False

    def alpha_penalty(self) -> Tensor:  # pragma: no cover - implemented by the layers
        raise NotImplementedError

    def _check_alpha_reg_handled(self) -> None:
        global _warned
        if (self.alpha_reg is not None and not self._alpha_reg_handled and not _warned
                and getattr(self, 'training', False) and torch.is_grad_enabled()):
            _warned = True
            print_log(MISSING_HOOK_MESSAGE, logger='current', level=logging.WARNING)


def regularized_modules(model: nn.Module) -> List[nn.Module]:
    """The quantizer layers of ``model`` that carry an alpha regulariser."""
    return [
        m for m in model.modules()
        if isinstance(m, AlphaRegularizedMixin) and m.alpha_reg is not None
    ]


def mark_alpha_reg_handled(model: nn.Module, handled: bool = True) -> int:
    """Tell the layers of ``model`` that their penalty reaches the loss (silences the
    missing-hook warning); returns how many layers carry a regulariser."""
    mods = regularized_modules(model)
    for m in mods:
        m._alpha_reg_handled = handled
    return len(mods)


def alpha_penalty(model: nn.Module) -> Tensor:
    """Sum of the alpha penalties of every regularised quantizer in ``model`` (0 if none)."""
    terms = [m.alpha_penalty() for m in regularized_modules(model)]
    if not terms:
        param = next(model.parameters(), None)
        return torch.zeros((), device=param.device if param is not None else None)
    return torch.stack([t.float() for t in terms]).sum()
