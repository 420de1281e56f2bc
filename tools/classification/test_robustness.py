"""Top-1/top-5 on clean and distorted images (supplement Table 3), mean ± std over seeds.

python tools/classification/test_robustness.py CONFIG CHECKPOINT [--distortions ...]
    [--severities ...] [--seeds 0 1 2] [--out-dir DIR] [--cfg-options ...] [--overwrite]
    [--save-per-image] [--bn-adapt [N]] [--bn-adapt-images n]
Writes DIR/results.json (the project's robustness schema, metric_key accuracy/top1) and
DIR/results.md (Table 3 layout); an interrupted run resumes from DIR/partial.json (results
of another checkpoint, config or data are refused unless --overwrite).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

import fq_det  # noqa: F401
from fq_det.cli import (add_bn_adapt_args, add_config_args, apply_bn_adapt_args,
                         check_checkpoint_matches, check_output_dir, load_config,
                         report_user_errors)
from fq_det.datasets.distortions import SEVERITIES, check_severity
from fq_det.evaluation.robustness import resolve_distortions, run_sweep


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--distortions', nargs='+', help='default: every distortion of the suite; '
                        'or a preset: paper (= all), benchmark, benchmark-extra')
    parser.add_argument('--severities', nargs='+', type=int, help='default: 1 2 3 4 5')
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=[0],
        help='distortion seeds; several give mean and std (default: 0)')
    parser.add_argument('--out-dir', help='default: ./work_dirs/<config name>/robustness')
    parser.add_argument('--name', help='row label in the table (default: config name)')
    parser.add_argument('--overwrite', action='store_true',
                        help='delete the results already in --out-dir and start afresh')
    parser.add_argument('--save-per-image', action='store_true',
                        help='also write OUT_DIR/per_image/*.npz (true and top-k labels per image)')
    add_bn_adapt_args(parser)
    add_config_args(parser, data_root_help='data folder of the test set (see train.py --data-root)')
    args = parser.parse_args(argv)

    # bad distortions or severities fail before anything is loaded
    resolve_distortions(args.distortions or 'all')
    for severity in args.severities or ():
        check_severity(severity)
    cfg = load_config(args.config, args.cfg_options, args.data_root)
    apply_bn_adapt_args(cfg, args)
    name = osp.splitext(osp.basename(args.config))[0]
    out_dir = args.out_dir or osp.join('./work_dirs', name, 'robustness')
    check_output_dir(out_dir, 'out-dir')  # before the checkpoint is read
    check_checkpoint_matches(cfg, args.checkpoint, flag=None)  # loaded with strict=True
    run_sweep('classification', cfg, args.checkpoint, out_dir,
              distortions=args.distortions or 'all', severities=args.severities or SEVERITIES,
              seeds=args.seeds, model_name=args.name or name, overwrite=args.overwrite,
              save_per_image=args.save_per_image)  # prints the Table 3 layout
    print(f'written: {osp.join(out_dir, "results.json")}, {osp.join(out_dir, "results.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
