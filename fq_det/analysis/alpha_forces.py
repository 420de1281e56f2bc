"""Why the POW exponents move (or not): the forces on ``alpha`` during training.

For a POW-1 channel, ``y = x ** p`` with ``p = 1 + alpha`` on the post-ReLU activation ``x``
(split width 1), so the task gradient of ``alpha`` sums over the channel's positions::

    dL/dalpha = sum_i dL/dy_i * x_i ** p * ln(x_i)

``ln x`` is negative below the split width and positive above it: the two parts cancel
unless the loss prefers one side. The L1 penalty adds ``w * sign(alpha)``, decoupled
weight decay (AdamW) pulls by ``lr * wd * alpha`` per step. Adam scales each step by the
gradient's running RMS, so what moves ``alpha`` is the *consistency* of its gradient: per
channel, ``|mean g| / rms g`` over the steps (1 = always the same sign, ~0 = noise).

:class:`AlphaForcesHook` records, per POW layer and iteration, the task gradient (the
total gradient minus the L1 term), and the fraction of the layer's inputs above the split
width; :func:`summarize_forces` turns that into one row per layer.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

__all__ = ['AlphaForcesHook', 'summarize_forces', 'format_forces_table']


@HOOKS.register_module()
class AlphaForcesHook(Hook):
    """Collect the per-channel task gradient of every POW ``alpha`` during training."""

    priority = 'LOW'

    def __init__(self) -> None:
        self.grads: dict[str, list[np.ndarray]] = defaultdict(list)
        self.above: dict[str, list[float]] = defaultdict(list)
        self.layers: dict[str, torch.nn.Module] = {}
        self._handles = []

    def before_train(self, runner) -> None:
        from fq_det.models.quantizers import POW
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        for name, m in model.named_modules():
            if isinstance(m, POW):
                self.layers[name] = m
                self._handles.append(m.alpha.register_hook(self._grad_hook(name, m)))
                self._handles.append(m.register_forward_pre_hook(self._input_hook(name, m)))

    def _grad_hook(self, name: str, layer):
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach().float().clone()
            reg = getattr(layer, 'alpha_reg', None)
            if reg is not None and reg.type == 'L1':  # remove the penalty's own gradient
                g -= reg.weight * torch.sign(layer.alpha.detach().float())
            elif reg is not None:
                g -= 2 * reg.weight * layer.alpha.detach().float()
            self.grads[name].append(g.reshape(g.shape[0], -1).mean(dim=1).numpy())
        return hook

    def _input_hook(self, name: str, layer):
        def hook(module, args) -> None:
            if module.training and args:
                x = args[0].detach()
                if getattr(module, 'with_relu', False):
                    x = x.clamp(min=0)
                self.above[name].append(float((x > module.split_width).float().mean()))
        return hook

    def after_train(self, runner) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def summarize_forces(hook: AlphaForcesHook, l1_weight: float | None = None) -> list[dict]:
    """Per layer: task-gradient RMS and consistency, the L1 pull, inputs above the width."""
    rows = []
    for name, layer in hook.layers.items():
        g = np.stack(hook.grads[name]) if hook.grads[name] else np.zeros((0, 1))
        if len(g) == 0:
            continue
        rms = np.sqrt((g ** 2).mean(axis=0))
        consistency = np.abs(g.mean(axis=0)) / np.maximum(rms, 1e-30)
        alpha = layer.alpha.detach().float().reshape(layer.alpha.shape[0], -1).mean(dim=1)
        reg = getattr(layer, 'alpha_reg', None)
        rows.append(dict(layer=name, steps=len(g), grad_rms=float(np.median(rms)),
                         consistency=float(np.median(consistency)),
                         l1_pull=float(reg.weight) if reg is not None and reg.type == 'L1'
                         else (l1_weight or 0.0),
                         frac_above_width=float(np.mean(hook.above[name]))
                         if hook.above[name] else float('nan'),
                         mean_abs_alpha=float(alpha.abs().mean())))
    return rows


def format_forces_table(rows: list[dict]) -> str:
    lines = ['| layer | task grad (median RMS) | consistency (median) | L1 pull | '
             'inputs > width | mean abs alpha |', '|---|---:|---:|---:|---:|---:|']
    lines += [f"| {r['layer']} | {r['grad_rms']:.2e} | {r['consistency']:.3f} | "
              f"{r['l1_pull']:.0e} | {100 * r['frac_above_width']:.1f} % | "
              f"{r['mean_abs_alpha']:.4f} |" for r in rows]
    return '\n'.join(lines) + '\n'
