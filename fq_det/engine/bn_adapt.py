"""Test-time BatchNorm adaptation (Schneider et al., NeurIPS 2020, "Improving robustness
against common corruptions by covariate shift adaptation").

Every BatchNorm layer's statistics are re-estimated from ``n`` unlabelled test images of the
current condition and mixed with the training statistics by a prior strength ``N``::

    mu  = N / (N + n) * mu_train  + n / (N + n) * mu_test
    var = N / (N + n) * var_train + n / (N + n) * var_test

``N = 0`` uses the test statistics alone; ``N = inf`` leaves the model unchanged. The test
statistics come from one forward pass over the adaptation images with the BN layers in
training mode (each layer normalises with, and records, the statistics of its input; later
layers therefore see the adapted earlier ones, as in the paper). With more images than
``batch_size`` the per-batch statistics are averaged. The weights never change; the
training statistics are restored after every condition, so no condition leaks into the next.

:class:`BNAdaptHook` does this before every test (and validation) epoch from the first
``num_images`` images of that epoch's dataloader, which is how the robustness sweep adapts
once per (distortion, severity) and on clean images alike.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import HOOKS

__all__ = ['BNAdaptHook', 'adapt_bn', 'restore_bn', 'bn_layers', 'BNAdaptError', 'add_bn_adapt_hook']


class BNAdaptError(ValueError):
    """BN adaptation asked of a model or with settings it cannot work with."""


def bn_layers(model: nn.Module) -> dict[str, _BatchNorm]:
    """Every BatchNorm layer that tracks running statistics, by name."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats}


def _check_prior(prior_strength: float) -> float:
    try:
        value = float(prior_strength)
    except (TypeError, ValueError) as err:
        raise BNAdaptError(f'prior_strength must be a number >= 0 (0: test statistics only, '
                           f'inf: no adaptation), got {prior_strength!r}') from err
    if math.isnan(value) or value < 0:
        raise BNAdaptError(f'prior_strength must be a number >= 0 (0: test statistics only, '
                           f'inf: no adaptation), got {prior_strength!r}')
    return value


def _forward(model: nn.Module, batch) -> None:
    """One forward pass of an mmengine model (or a plain module on a tensor)."""
    if hasattr(model, 'data_preprocessor') and isinstance(batch, dict):
        data = model.data_preprocessor(batch, False)
        model._run_forward(data, mode='tensor')
    else:
        model(batch)


@torch.no_grad()
def adapt_bn(model: nn.Module, batches: Iterable, prior_strength: float,
             num_images: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """Mix each BN layer's statistics with those of ``batches`` (Schneider et al.).

    Returns the saved training statistics (``{name: (mean, var, batches)}``) for
    :func:`restore_bn`.
    ``num_images`` is ``n`` in the mixing weights: the number of images in ``batches``.
    """
    prior = _check_prior(prior_strength)
    layers = bn_layers(model)
    if not layers:
        raise BNAdaptError(f'{type(model).__name__} has no BatchNorm layer with running '
                           'statistics: test-time BN adaptation has nothing to adapt')
    if num_images < 1:
        raise BNAdaptError(f'num_images must be >= 1, got {num_images}')
    saved = {name: (bn.running_mean.clone(), bn.running_var.clone(),
                    bn.num_batches_tracked.clone()) for name, bn in layers.items()}
    if math.isinf(prior):
        return saved
    state = {name: (bn.training, bn.momentum) for name, bn in layers.items()}
    try:
        for bn in layers.values():
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the adaptation batches
            bn.train()
        seen = 0
        for batch in batches:
            _forward(model, batch)
            seen += 1
        if seen == 0:
            raise BNAdaptError('no adaptation batch: the test dataloader is empty')
    except BaseException:
        restore_bn(model, saved)
        raise
    finally:
        for name, bn in layers.items():
            bn.train(state[name][0])
            bn.momentum = state[name][1]
    w_train = prior / (prior + num_images)
    for name, bn in layers.items():
        mean, var, _ = saved[name]
        bn.running_mean.mul_(1 - w_train).add_(w_train * mean)
        bn.running_var.mul_(1 - w_train).add_(w_train * var)
    return saved


@torch.no_grad()
def restore_bn(model: nn.Module, saved: dict[str, tuple[torch.Tensor, ...]]) -> None:
    """Put back the statistics :func:`adapt_bn` saved."""
    layers = bn_layers(model)
    for name, (mean, var, tracked) in saved.items():
        layers[name].running_mean.copy_(mean)
        layers[name].running_var.copy_(var)
        layers[name].num_batches_tracked.copy_(tracked)


def _first_images(dataloader, num_images: int) -> Iterable:
    """The dataloader's batches up to ``num_images`` images (the last batch cut to size)."""
    left = num_images
    for batch in dataloader:
        size = len(batch['inputs']) if isinstance(batch, dict) else len(batch)
        if size > left:
            batch = {k: v[:left] if isinstance(v, (list, tuple, torch.Tensor)) else v
                     for k, v in batch.items()} if isinstance(batch, dict) else batch[:left]
            size = left
        yield batch
        left -= size
        if left <= 0:
            return


@HOOKS.register_module()
class BNAdaptHook(Hook):
    """Adapt BN statistics to each test/val epoch's data, then restore them.

    Args:
        prior_strength: ``N`` (>= 0; ``float('inf')`` = no adaptation).
        num_images: ``n``, the first images of the epoch's dataloader used (unlabelled).
    """

    priority = 'HIGH'  # before the progress/logging hooks start counting the epoch

    def __init__(self, prior_strength: float = 0.0, num_images: int = 64) -> None:
        self.prior_strength = _check_prior(prior_strength)
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise BNAdaptError(f'num_images must be an int >= 1, got {num_images!r}')
        self.num_images = num_images
        self._saved = None
        self._announced = False

    def _adapt(self, runner, loop) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        layers = bn_layers(model)
        dataset = loop.dataloader.dataset
        n = min(self.num_images, len(dataset))
        if not self._announced:
            frozen = [name for name, bn in layers.items()
                      if not any(p.requires_grad for p in bn.parameters(recurse=False))]
            print_log(f'BNAdaptHook: adapting {len(layers)} BatchNorm layers ('
                      f'{len(frozen)} of them frozen in training) from {n} test images per '
                      f'evaluation, prior strength N = {self.prior_strength:g}: '
                      f'{", ".join(layers)}', logger='current')
            self._announced = True
        self._saved = adapt_bn(model, _first_images(loop.dataloader, n), self.prior_strength, n)

    def _restore(self, runner) -> None:
        if self._saved is not None:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            restore_bn(model, self._saved)
            self._saved = None

    def before_test_epoch(self, runner) -> None:
        self._adapt(runner, runner.test_loop)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._restore(runner)

    def before_val_epoch(self, runner) -> None:
        self._adapt(runner, runner.val_loop)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._restore(runner)


def add_bn_adapt_hook(cfg, prior_strength: float = 0.0, num_images: int = 64) -> None:
    """Append :class:`BNAdaptHook` to ``cfg.custom_hooks`` (checked here, before any work)."""
    BNAdaptHook(prior_strength, num_images)  # raises BNAdaptError on bad values
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='mmdet.BNAdaptHook', prior_strength=float(prior_strength),
             num_images=int(num_images))]
