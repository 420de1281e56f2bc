"""Train a classifier with mmengine's Runner; the flags of MMDetection 3.x's tools/train.py that apply (plus --data-root and --seed).

python tools/classification/train.py CONFIG [--work-dir] [--data-root] [--cfg-options]
    [--resume [CKPT]] [--amp] [--seed N]
"""
from __future__ import annotations

import argparse
import sys

import fq_det  # noqa: F401  (registers everything; checkpoint compat before any load)
from fq_det.cli import (add_config_args, build_runner, config_from_args, enable_amp,
                         report_user_errors, set_resume, set_seed)
from mmengine.config import Config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an fq-det classifier (mmengine Runner)')
    parser.add_argument('config', help='classification config file')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go '
        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from CHECKPOINT, or from the latest one in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--seed', type=int, help="random seed (default: the config's randomness.seed)")
    add_config_args(parser, data_root_help='data folder for every dataloader (CIFAR: the folder '
                    'holding cifar-10-batches-py/; ImageNet: the one holding train/ and val/)')
    return parser.parse_args(argv)


def build_cfg(args: argparse.Namespace) -> Config:
    """The config with the command line applied (no data check: the classification data
    sets name their missing files when the Runner builds them)."""
    cfg = config_from_args(args)
    if args.amp:
        enable_amp(cfg)
    set_seed(cfg, getattr(args, 'seed', None))
    set_resume(cfg, args.resume)
    return cfg


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    runner = build_runner(build_cfg(parse_args(argv)))
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
