"""Evaluate a detector on clean and distorted test data (mAP under distortion).

    python tools/test_robustness.py CONFIG CHECKPOINT [--distortions motion_blur jpeg | all]
        [--severities 1 2 3 4 5] [--out-dir DIR] [--seed 0] [--metric-key pascal_voc/mAP]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi] [--overwrite]
        [--save-per-image] [--allow-partial-load] [--bn-adapt [N]] [--bn-adapt-images n]
        [--corrupted-root DIR]

Loads the model once, evaluates clean + every (distortion, severity) with the config's
own evaluator, writes ``results.json`` after every pair (a rerun with the same
``--out-dir``, checkpoint, config and data skips the pairs already done; another one is
refused unless ``--overwrite``) and prints/writes ``results.md``.
Default ``--out-dir``: ``work_dirs/<config name>/robustness``. ``--corrupted-root DIR``
reads the distorted test sets that ``tools/misc/export_corrupted.py`` wrote into DIR
instead of distorting on the fly (the same numbers).
"""
from __future__ import annotations

import argparse
import os.path as osp

import fq_det  # noqa: F401  (registers the plugin and makes checkpoints loadable)
from fq_det.cli import (add_bn_adapt_args, add_config_args, add_launcher_args,
                         apply_bn_adapt_args, check_checkpoint_matches, check_output_dir,
                         config_from_args,
                         end_process_group, report_user_errors)
from fq_det.datasets.distortions import DISTORTIONS, PRESETS, SEVERITIES, check_severity
from fq_det.evaluation.robustness import resolve_distortions, run_sweep


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='MMDet robustness test: the metric under each distortion and severity')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--distortions', nargs='+', default=['all'],
                        help=f'a preset ({", ".join(PRESETS)}; "all" = "paper" = the '
                             f'project\'s seven, "benchmark" = the 15 common corruptions '
                             f'c:<name>, "benchmark-extra" = the 4 held-out ones) or names: '
                             f'{", ".join(DISTORTIONS)}, c:<name> (or ic:<name> with '
                             'imagecorruptions installed)')
    parser.add_argument('--severities', type=int, nargs='+', default=list(SEVERITIES),
                        help='severities among 1..5')
    parser.add_argument('--out-dir', help='where results.json/results.md and logs go '
                        '(default: work_dirs/<config name>/robustness)')
    parser.add_argument('--seed', type=int, default=0, help='base seed of the distortions')
    parser.add_argument('--metric-key', help='metric to summarise (default: pascal_voc/mAP, '
                        'coco/bbox_mAP, ... whichever the evaluator returns)')
    parser.add_argument('--overwrite', action='store_true',
                        help='delete the results already in --out-dir and start afresh')
    parser.add_argument('--save-per-image', action='store_true',
                        help='also write OUT_DIR/per_image/<clean|distortion_sN>.npz '
                        '(per-image detections and ground truth)')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help="evaluate a checkpoint that lacks some of the model's weights")
    parser.add_argument('--corrupted-root', metavar='DIR',
                        help='read each (distortion, severity) from the corrupted sets '
                        'tools/misc/export_corrupted.py wrote into DIR (same seed, same data) '
                        'instead of distorting on the fly')
    add_bn_adapt_args(parser)
    add_config_args(parser)
    add_launcher_args(parser)
    return parser.parse_args(argv)


@report_user_errors
def main(argv: list[str] | None = None) -> dict:
    """Run the sweep; return the results dict (also in OUT_DIR/results.json)."""
    args = parse_args(argv)
    if args.seed < 0:  # as tools/train.py's set_seed
        raise ValueError(f'--seed must be >= 0, got {args.seed}')
    try:  # fail before loading anything
        distortions = resolve_distortions(args.distortions)
        severities = [check_severity(s) for s in args.severities]
    except ImportError as err:  # ic:<name> without imagecorruptions installed
        raise ValueError(str(err)) from None
    cfg = config_from_args(args, splits=('test',))
    apply_bn_adapt_args(cfg, args)
    out_dir = args.out_dir or osp.join(cfg.work_dir, 'robustness')
    check_output_dir(out_dir, 'out-dir')  # before the checkpoint is read
    check_checkpoint_matches(cfg, args.checkpoint, allow_partial=args.allow_partial_load)
    return run_sweep('detection', cfg, args.checkpoint, out_dir, distortions=distortions,
                     severities=severities, seeds=(args.seed, ), metric_key=args.metric_key,
                     overwrite=args.overwrite, save_per_image=args.save_per_image,
                     corrupted_root=args.corrupted_root)


if __name__ == '__main__':
    main()
    end_process_group()  # only after success: a failed rank exits without waiting
