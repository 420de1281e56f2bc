"""Write the synthetic data set (fq_det.datasets.synthetic_voc), VOC2007 or COCO layout.

Example::

    python tools/misc/make_synthetic_voc.py --out data/synthvoc --num-train 200 --num-test 50 --seed 0
    python tools/misc/make_synthetic_voc.py --out data/synthcoco --format coco   # the same images, COCO JSON
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_module(rel: str) -> ModuleType:
    """A package module by its path: the generator and the error/path helpers need only
    numpy, OpenCV and the standard library, so the CLI starts in a second instead of
    importing the whole package (MMDetection, mmcv ops)."""
    path = REPO_ROOT / rel
    name = 'fq_det_light_' + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so --workers can pickle its functions
    spec.loader.exec_module(module)
    return module


errors = _load_module('fq_det/cli/errors.py')
paths = _load_module('fq_det/cli/paths.py')


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {number}')
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {number}')
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='data root; VOC2007/ is written inside it')
    parser.add_argument('--num-train', type=_count, default=200, help='trainval images')
    parser.add_argument('--num-test', type=_count, default=50, help='test images')
    parser.add_argument('--seed', type=_count, default=0, help='random seed (>= 0)')
    parser.add_argument('--size', type=_positive, nargs=2, metavar=('W', 'H'), default=(320, 240),
                        help='image width and height in pixels')
    parser.add_argument('--format', choices=('voc', 'coco'), default='voc',
                        help='voc: VOC2007/{JPEGImages,Annotations,ImageSets/Main}; coco: '
                        'annotations/instances_{trainval,test}.json and {trainval,test}/ images')
    parser.add_argument('--workers', type=_positive, default=min(4, os.cpu_count() or 1),
                        help='processes drawing images (the output does not depend on it)')
    return parser.parse_args(argv)


@errors.report_user_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    paths.check_output_dir(args.out, '--out folder')
    gen = _load_module('fq_det/datasets/synthetic_voc.py')
    make = gen.make_synthetic_coco if args.format == 'coco' else gen.make_synthetic_voc
    root = make(args.out, args.num_train, args.num_test, seed=args.seed,
                image_size=tuple(args.size), workers=args.workers)
    if args.format == 'coco':
        print(f'synthetic COCO-format set ({args.num_train} trainval + {args.num_test} test '
              f'images, {args.size[0]}x{args.size[1]}, seed {args.seed}) written to {root}; '
              f'train on it with: python tools/train.py '
              f'configs/synthcoco/faster_rcnn_r18_synthcoco.py --data-root {root}')
        return
    print(f'synthetic VOC ({args.num_train} trainval + {args.num_test} test images, '
          f'{args.size[0]}x{args.size[1]}, seed {args.seed}, classes {", ".join(gen.SYNTH_CLASSES)})')
    print(f'written to {root / "VOC2007"}; train on it with: python tools/train.py configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py --data-root {root}')


if __name__ == '__main__':
    main()
