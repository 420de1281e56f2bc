"""Train a detector from a config (MMDetection's flags, over mmengine's Runner).

    python tools/train.py configs/faster_rcnn_r50_pow.py
    python tools/train.py configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py --data-root data/synthvoc
    python tools/train.py CONFIG --resume                 # latest checkpoint in the work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_600.pth
    bash tools/dist_train.sh CONFIG 8                      # torchrun, one process per GPU
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
import fq_det  # noqa: E402,F401  (registers the plugin and makes checkpoints loadable)
from fq_det.datasets.data_check import DataNotFoundError, check_data, set_data_root  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--data-root', help="read the config's data sets from this folder")
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT, or without a value from the latest checkpoint '
                        'in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale lr by total batch size / the config's auto_scale_lr.base_batch_size")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (e.g. train_cfg.max_iters=100)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def setup_cfg(args: argparse.Namespace) -> Config:
    """Config with the command line applied (shared with tools/test.py)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if args.launcher != 'none' and not torch.cuda.is_available():
        if dist_cfg.get('backend', 'nccl') == 'nccl':
            dist_cfg['backend'] = 'gloo'  # nccl needs GPUs
        if args.launcher == 'pytorch':
            init_cpu_process_group(dist_cfg['backend'])
        if cfg.get('model_wrapper_cfg') is None:  # mmengine's default pins device_ids=[LOCAL_RANK]
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False,
                                         find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def init_cpu_process_group(backend: str) -> None:
    """Join torchrun's process group on a machine without GPUs.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` before joining, which
    fails without CUDA; the Runner skips ``init_dist`` when a group already exists.
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)


def main(argv: list[str] | None = None) -> Runner:
    args = parse_args(argv)
    cfg = setup_cfg(args)
    splits = ('train', 'val') if cfg.get('val_cfg') and cfg.get('val_dataloader') else ('train',)
    try:
        check_data(cfg, splits, config_name=args.config)
    except DataNotFoundError as err:
        sys.exit(f'error: {err}')

    if args.amp:
        if not torch.cuda.is_available():
            sys.exit('error: --amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper); none is visible.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            sys.exit('error: --auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
