"""The forces on the POW exponents during training: task-gradient size and consistency,
the L1 pull and the share of inputs above the split width, per layer.

    python tools/analysis/alpha_forces.py CONFIG --data-root DIR [--epochs 1]
        [--alpha-lr-mult 10] [--alpha-decay-mult 0] [--cfg-options ...]

Trains CONFIG (a POW classification or detection config) for ``--epochs`` (epoch loops)
or ``--iters`` (iteration loops) in ``--work-dir`` and prints one row per POW layer
(fq_det.analysis.alpha_forces explains the columns); ``--out`` also writes them as JSON.
A missing config or data folder, or an unwritable --work-dir or --out: one ``error:`` line
(exit status 2) before training.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from fq_det.cli import report_user_errors  # (imports fq_det: quiets the stack)


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('--data-root', required=True, help='the data set folder (VOC layout)')
    p.add_argument('--work-dir', default='work_dirs/alpha_forces')
    p.add_argument('--epochs', type=int, default=1, help='epochs (epoch-based configs)')
    p.add_argument('--iters', type=int, default=200, help='iterations (iteration-based configs)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='write the rows to this JSON file')
    p.add_argument('--alpha-lr-mult', type=float, help="lr multiplier of every '.alpha'")
    p.add_argument('--alpha-decay-mult', type=float, help="weight-decay multiplier of '.alpha'")
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p.parse_args(argv)


@report_user_errors
def main(argv=None) -> list[dict]:
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    args = parse_args(argv)
    import fq_det  # noqa: F401  (registers the plugin)
    from fq_det.analysis.alpha_forces import AlphaForcesHook, format_forces_table, summarize_forces
    from fq_det.cli import check_output_dir, check_output_file, load_config
    from fq_det.datasets.data_check import set_data_root
    from fq_det.engine.runner import build_runner

    cfg = load_config(args.config, args.cfg_options)
    if not Path(args.data_root).is_dir():
        raise FileNotFoundError(f'--data-root {args.data_root} is not a folder')
    check_output_dir(args.work_dir, '--work-dir')
    if args.out:
        check_output_file(args.out, '--out file')
    mults = {k: v for k, v in (('lr_mult', args.alpha_lr_mult),
                               ('decay_mult', args.alpha_decay_mult)) if v is not None}
    if mults:  # a dotted --cfg-options key cannot name '.alpha'
        paramwise = cfg.optim_wrapper.setdefault('paramwise_cfg', {})
        paramwise.setdefault('custom_keys', {}).setdefault('.alpha', {}).update(mults)
    set_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed)
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop':
        cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = args.iters
    else:
        cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = args.epochs
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 9)
    runner = build_runner(cfg)
    hook = AlphaForcesHook()
    runner.register_hook(hook)
    runner.train()
    rows = summarize_forces(hook)
    if not rows:
        raise ValueError(f'{args.config} has no POW layer: nothing to measure')
    print(format_forces_table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == '__main__':
    main()
