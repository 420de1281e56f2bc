"""Top-1/top-5 on clean and distorted images (supplement Table 3), mean ± std over seeds.

python tools/classification/test_robustness.py CONFIG CHECKPOINT [--distortions ...]
    [--severities ...] [--seeds 0 1 2] [--out-dir DIR] [--cfg-options ...] [--overwrite]
    [--save-per-image]
Writes DIR/results.json (the project's robustness schema, metric_key accuracy/top1) and
DIR/results.md (Table 3 layout); an interrupted run resumes from DIR/partial.json (results
of another checkpoint, config or data are refused unless --overwrite).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
import fq_det  # noqa: E402,F401
from fq_det.classification.datasets import DataFolderNotFoundError  # noqa: E402
from fq_det.datasets.data_check import set_data_root  # noqa: E402
from fq_det.classification.robustness import run_classification_robustness  # noqa: E402
from fq_det.evaluation.sweep_store import (OutDirNotWritableError,  # noqa: E402
                                           StaleResultsError, SweepFileError, check_writable)
from mmengine.config import Config, DictAction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--distortions', nargs='+', help='default: every distortion of the suite')
    parser.add_argument('--severities', nargs='+', type=int, help='default: 1 2 3 4 5')
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=[0],
        help='distortion seeds; several give mean and std (default: 0)')
    parser.add_argument('--out-dir', help='default: ./work_dirs/<config name>/robustness')
    parser.add_argument('--name', help='row label in the table (default: config name)')
    parser.add_argument(
        '--data-root', help='data folder of the test set (see train.py --data-root)')
    parser.add_argument('--overwrite', action='store_true',
                        help='delete the results already in --out-dir and start afresh')
    parser.add_argument('--save-per-image', action='store_true',
                        help='also write OUT_DIR/per_image/*.npz (true and top-k labels per image)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=64')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    name = osp.splitext(osp.basename(args.config))[0]
    out_dir = args.out_dir or osp.join('./work_dirs', name, 'robustness')
    try:
        check_writable(out_dir)
        results = run_classification_robustness(
            cfg,
            args.checkpoint,
            out_dir,
            distortions=args.distortions,
            severities=args.severities,
            seeds=args.seeds,
            model_name=args.name or name,
            overwrite=args.overwrite,
            save_per_image=args.save_per_image)
    except (DataFolderNotFoundError, ValueError, OutDirNotWritableError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    from fq_det.classification.robustness import format_classification_table
    print(format_classification_table(results))
    print(f'written: {osp.join(out_dir, "results.json")}, {osp.join(out_dir, "results.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
