"""``AlphaRegularizationHook``: puts the POW/HPOW alpha penalty into the training loss."""
from __future__ import annotations

import logging
from typing import Optional

import torch

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS

from ..models.quantizers.regularizer import mark_alpha_reg_handled, regularized_modules

LOSS_KEY = 'loss_alpha_reg'


@HOOKS.register_module()
class AlphaRegularizationHook(Hook):
    """Adds ``loss_alpha_reg = alpha_penalty(model)`` to the loss dict of every training
    forward (``forward(..., mode='loss')``).

    ``before_train`` registers a forward hook on the unwrapped model, so the penalty is
    part of the dict that ``parse_losses`` sums (every key containing ``'loss'``): it is
    back-propagated, AMP-scaled and logged like any other loss, whatever detector,
    wrapper or optimiser is used. List it in every fq config::

        custom_hooks = [dict(type='AlphaRegularizationHook')]

    Args:
        loss_key: the key added to the loss dict (must contain ``'loss'``).
    """

    priority = 'NORMAL'

    def __init__(self, loss_key: str = LOSS_KEY) -> None:
        if 'loss' not in loss_key:
            raise ValueError(
                f"loss_key must contain 'loss' (mmengine only sums such keys), got {loss_key!r}")
        self.loss_key = loss_key
        self._handle = None
        self._modules: list = []

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.attach(model)
        if self._modules:
            print_log(
                f'AlphaRegularizationHook: {len(self._modules)} quantizer layers add their alpha '
                f"penalty to the loss as '{self.loss_key}'",
                logger='current')
        else:
            print_log('AlphaRegularizationHook: no quantizer layer has alpha_reg; nothing to add',
                      logger='current',
                      level=logging.INFO)

    def attach(self, model) -> None:
        """Register the loss-dict forward hook on ``model`` (also usable without a Runner)."""
        self.detach()
        self._modules = regularized_modules(model)
        if not self._modules:
            return
        mark_alpha_reg_handled(model)
        self._handle = model.register_forward_hook(self._add_penalty, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def after_train(self, runner) -> None:
        self.detach()

    def _add_penalty(self, module, args, kwargs, output) -> Optional[dict]:
        mode = kwargs.get('mode', args[2] if len(args) > 2 else None)
        if mode != 'loss' or not isinstance(output, dict):
            return None
        output[self.loss_key] = torch.stack([m.alpha_penalty().float()
                                             for m in self._modules]).sum()
        return output
