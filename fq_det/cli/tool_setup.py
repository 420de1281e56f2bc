"""The command-line set-up that the tools share: arguments, config, work dir, launcher, AMP.

``tools/train.py``, ``tools/test.py``, ``tools/test_robustness.py`` and
``tools/classification/*.py`` parse their own flags and call these functions, so a flag
means the same in every tool and no tool imports another::

    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    add_config_args(parser)            # --data-root, --cfg-options
    add_launcher_args(parser)          # --launcher, --local_rank
    args = parser.parse_args()
    cfg = config_from_args(args, splits=('test',))   # config, launcher, data check, work dir
    runner = build_runner(cfg)

Errors are raised as ``FileNotFoundError`` / ``ValueError`` with a message naming the
file or flag; the tools' :func:`~fq_det.cli.errors.report_user_errors` prints them.
"""
from __future__ import annotations

import argparse
import gc
import os
import os.path as osp
from typing import Sequence

from mmengine.config import Config, DictAction

from fq_det.datasets.data_check import check_data, set_data_root
from fq_det.engine.runner import build_runner

from .checkpoints import check_checkpoint_matches
from .paths import check_output_dir

__all__ = ['add_config_args', 'add_launcher_args', 'load_config', 'set_work_dir',
           'setup_launcher', 'init_cpu_process_group', 'enable_amp', 'set_seed', 'set_resume',
           'build_runner', 'default_work_dir', 'config_from_args']

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_config_args(parser: argparse.ArgumentParser, data_root_help: str | None = None) -> None:
    """``--data-root`` and ``--cfg-options``, as every tool reads them."""
    parser.add_argument('--data-root', help=data_root_help or
                        "read the config's data sets from this folder")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (e.g. train_cfg.max_iters=100)')


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and ``--local_rank`` (MMDetection's names)."""
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(path: str, cfg_options: dict | None = None,
                data_root: str | None = None) -> Config:
    """The config at ``path`` with ``--cfg-options`` merged and ``--data-root`` applied."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    return cfg


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config name>``, MMDetection's default."""
    return osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])


def set_work_dir(cfg: Config, work_dir: str | None, config_path: str) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``;
    raise if it cannot be written (nothing is created yet)."""
    if work_dir:
        cfg.work_dir = work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = default_work_dir(config_path)
    check_output_dir(cfg.work_dir, 'work dir')
    return cfg.work_dir


def init_cpu_process_group(backend: str) -> None:
    """Join torchrun's process group on a machine without GPUs.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` before joining, which
    fails without CUDA; the Runner skips ``init_dist`` when a group already exists.
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)


def end_process_group() -> None:
    """Leave the process group that ``--launcher`` joined, after the tool's ``main`` returned.

    Destroying the group and collecting the Runner's cycles (its DDP model holds the group)
    stops gloo's threads while Python still runs; left to interpreter shutdown, a finished
    rank can abort ("terminate called without an active exception"). Only after success.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def setup_launcher(cfg: Config, launcher: str, local_rank: int = 0) -> None:
    """Set ``cfg.launcher``; without GPUs, run distributed jobs over gloo on the CPU."""
    import torch
    if launcher not in LAUNCHERS:
        raise ValueError(f'unknown launcher {launcher!r}; valid choices: {", ".join(LAUNCHERS)}')
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'  # nccl needs GPUs
    if launcher == 'pytorch':
        init_cpu_process_group(dist_cfg['backend'])
    if cfg.get('model_wrapper_cfg') is None:  # mmengine's default pins device_ids=[LOCAL_RANK]
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))


def enable_amp(cfg: Config) -> None:
    """``--amp``: mmengine's ``AmpOptimWrapper`` with a dynamic loss scale (needs CUDA)."""
    import torch
    if not torch.cuda.is_available():
        raise ValueError("--amp needs a CUDA GPU (mmengine's AmpOptimWrapper); none is visible")
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def set_seed(cfg: Config, seed: int | None) -> None:
    """``--seed``: the Runner's random seed (data order, initialisation), kept otherwise."""
    if seed is None:
        return
    if seed < 0:
        raise ValueError(f'--seed must be >= 0, got {seed}')
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)


def set_resume(cfg: Config, resume: str | None) -> None:
    """``--resume [CKPT]``: from CKPT, or (``'auto'``) from the latest checkpoint of the
    work dir. The checkpoint must be one of this config's model: resuming from another
    model's weights would mix them with this model's optimizer state."""
    if not resume:
        return
    from mmengine.runner import find_latest_checkpoint
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
        checkpoint = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
    else:
        cfg.resume, cfg.load_from = True, resume
        checkpoint = resume
    if checkpoint:
        check_checkpoint_matches(cfg, checkpoint, flag=None)


def config_from_args(args: argparse.Namespace, splits: Sequence[str] = ()) -> Config:
    """The set-up every tool starts with, in this order: load the config (``args.config``,
    ``--cfg-options``, ``--data-root``), the launcher (``--launcher``, if the tool has it),
    the data check of ``splits`` (missing files named before anything is built; ``'val'``
    only when the config validates) and the work dir (``--work-dir`` if the tool has it;
    checked to be writable, not created)."""
    cfg = load_config(args.config, getattr(args, 'cfg_options', None),
                      getattr(args, 'data_root', None))
    if hasattr(args, 'launcher'):
        setup_launcher(cfg, args.launcher, getattr(args, 'local_rank', 0))
    validates = bool(cfg.get('val_cfg') and cfg.get('val_dataloader'))
    splits = [s for s in splits if s != 'val' or validates]
    if splits:
        check_data(cfg, splits, config_name=args.config)
    set_work_dir(cfg, getattr(args, 'work_dir', None), args.config)
    return cfg


def add_bn_adapt_args(parser: argparse.ArgumentParser) -> None:
    """``--bn-adapt [N]`` and ``--bn-adapt-images n``: test-time BN adaptation."""
    parser.add_argument('--bn-adapt', nargs='?', const=0.0, type=float, metavar='N',
                        help='adapt every BatchNorm layer\'s statistics to each condition '
                        '(clean included) from its first --bn-adapt-images test images, with '
                        'prior strength N (default 0: the test statistics alone; '
                        'fq_det.engine.BNAdaptHook)')
    parser.add_argument('--bn-adapt-images', type=int, default=64, metavar='n',
                        help='images per condition for --bn-adapt (default: 64)')


def apply_bn_adapt_args(cfg: Config, args: argparse.Namespace) -> None:
    """Add the BN adaptation hook to ``cfg`` when ``--bn-adapt`` was given."""
    if getattr(args, 'bn_adapt', None) is not None:
        from fq_det.engine.bn_adapt import add_bn_adapt_hook
        add_bn_adapt_hook(cfg, args.bn_adapt, args.bn_adapt_images)
