"""Write a config's test split once per (distortion, severity): VOC-C / COCO-C style sets.

Example::

    python tools/misc/export_corrupted.py configs/faster_rcnn_r50_pow.py --out data/VOC-C \\
        --distortions benchmark --severities 1 2 3 4 5 --workers 8

writes ``data/VOC-C/c-<corruption>/<severity>/`` in the data set's own layout (PNG images
under the source file names, annotations copied or linked), a ``manifest.json`` and a
``pair.json`` per pair (per-image seeds, files and digests). Resumable: a rerun skips
the finished pairs. ``tools/test_robustness.py CONFIG CKPT --corrupted-root data/VOC-C``
then reads them instead of distorting on the fly, with the same numbers.
"""
from __future__ import annotations

import argparse
import os

import fq_det  # noqa: F401  (registers the plugin's transforms and data sets)
from fq_det.cli import (add_config_args, check_output_dir, config_from_args,
                         report_user_errors)
from fq_det.datasets.distortions import PRESETS, SEVERITIES, check_severity
from fq_det.evaluation.corrupted_sets import ANNOTATION_MODES, export_corrupted
from fq_det.evaluation.robustness import resolve_distortions


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {number}')
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the config whose test split is exported')
    parser.add_argument('--out', required=True, help='export root (created)')
    parser.add_argument('--distortions', nargs='+', default=['benchmark'],
                        help=f'a preset ({", ".join(PRESETS)}) or distortion names '
                        '(default: benchmark, the 15 common corruptions)')
    parser.add_argument('--severities', type=int, nargs='+', default=list(SEVERITIES),
                        help='severities among 1..5')
    parser.add_argument('--seed', type=int, default=0,
                        help='base seed of the distortions (the sweep\'s --seed)')
    parser.add_argument('--workers', type=_positive, default=min(4, os.cpu_count() or 1),
                        help='processes corrupting and writing images (the files do not '
                        'depend on it)')
    parser.add_argument('--annotations', choices=ANNOTATION_MODES, default='copy',
                        help='copy the annotation files into every pair (default) or link them')
    parser.add_argument('--overwrite', action='store_true',
                        help='delete the export in --out (its manifest and pairs) first')
    add_config_args(parser)
    return parser.parse_args(argv)


@report_user_errors
def main(argv: list[str] | None = None) -> dict:
    """Export; return the manifest (also in OUT/manifest.json)."""
    args = parse_args(argv)
    if args.seed < 0:
        raise ValueError(f'--seed must be >= 0, got {args.seed}')
    try:
        distortions = resolve_distortions(args.distortions)
        severities = [check_severity(s) for s in args.severities]
    except ImportError as err:  # ic:<name> without imagecorruptions installed
        raise ValueError(str(err)) from None
    check_output_dir(args.out, '--out folder')
    cfg = config_from_args(args, splits=('test', ))
    manifest = export_corrupted(cfg, args.out, distortions, severities, seed=args.seed,
                                workers=args.workers, annotations=args.annotations,
                                overwrite=args.overwrite)
    print(f'{len(manifest["pairs"])} pair(s) in {args.out} '
          f'(read them with tools/test_robustness.py ... --corrupted-root {args.out})')
    return manifest


if __name__ == '__main__':
    main()
