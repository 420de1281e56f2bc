"""Schedule length, one place: set a config's iterations or epochs, and its warm-up, LR
steps, validation and checkpoints follow (used by the main job and the studies)."""
from __future__ import annotations

__all__ = ['scale_iter_schedule', 'scale_epoch_schedule']


def scale_iter_schedule(cfg, iters: int) -> None:
    """Set an iteration schedule's length; warm-up, LR steps (50/80 %) and checkpoints follow."""
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':
            sched.end = iters
            sched.milestones = [int(iters * 0.5), int(iters * 0.8)]
        elif sched.type == 'LinearLR':
            sched.end = min(sched.end, max(1, iters // 10))
    cfg.default_hooks.checkpoint.interval = max(1, iters // 4)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1


def scale_epoch_schedule(cfg, epochs: int) -> None:
    """Set an epoch schedule's length; the cosine decay and checkpoints follow."""
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = epochs
    for sched in cfg.param_scheduler:
        if sched.type == 'CosineAnnealingLR':
            sched.begin, sched.end = min(1, epochs - 1), epochs
            sched.T_max = max(1, epochs - sched.begin)
        elif sched.type == 'LinearLR':
            sched.end = min(sched.end, epochs)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
