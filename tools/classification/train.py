"""Train a classifier with mmengine's Runner.

python tools/classification/train.py CONFIG [--work-dir] [--data-root] [--cfg-options]
    [--resume [CKPT]] [--amp]
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
import fq_det  # noqa: E402,F401  (registers everything; checkpoint compat before any load)
from fq_det.classification.datasets import DataFolderNotFoundError  # noqa: E402
from fq_det.datasets.data_check import set_data_root  # noqa: E402
from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
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
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--data-root',
        help='data folder for every dataloader (CIFAR: the folder '
        'holding cifar-10-batches-py/; ImageNet: the one holding train/ and val/)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. randomness.seed=1 train_cfg.max_epochs=2')
    return parser.parse_args()


def build_cfg(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main() -> int:
    args = parse_args()
    runner = Runner.from_cfg(build_cfg(args))
    try:
        runner.train()
    except DataFolderNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
