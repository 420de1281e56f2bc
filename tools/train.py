"""Train a detector from a config; follows MMDetection 3.x's tools/train.py (same flags, plus --data-root and --seed).

    python tools/train.py configs/faster_rcnn_r50_pow.py
    python tools/train.py configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py --data-root data/synthvoc
    python tools/train.py CONFIG --resume                 # latest checkpoint in the work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_600.pth
    bash tools/dist_train.sh CONFIG 8                      # torchrun, one process per GPU
"""
from __future__ import annotations

import argparse

import fq_det  # noqa: F401  (registers the plugin and makes checkpoints loadable)
from fq_det.cli import (add_config_args, add_launcher_args, build_runner, config_from_args,
                         enable_amp, end_process_group, report_user_errors, set_resume, set_seed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    add_config_args(parser)
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT, or without a value from the latest checkpoint '
                        'in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale lr by total batch size / the config's auto_scale_lr.base_batch_size")
    parser.add_argument('--seed', type=int, help="random seed (default: the config's randomness.seed)")
    add_launcher_args(parser)
    return parser.parse_args(argv)


@report_user_errors
def main(argv: list[str] | None = None):
    args = parse_args(argv)
    cfg = config_from_args(args, splits=('train', 'val'))
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    set_seed(cfg, args.seed)
    set_resume(cfg, args.resume)
    runner = build_runner(cfg)
    runner.train()
    return runner  # the mmengine Runner, for callers in Python


if __name__ == '__main__':
    main()
    end_process_group()  # only after success: a failed rank exits without waiting
