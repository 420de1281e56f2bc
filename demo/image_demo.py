"""Detections on clean and distorted images, one figure (the supplement's Figure 4).

    python demo/image_demo.py IMG [IMG ...] CONFIG CHECKPOINT \
        [--distortions inpainting ngrn salt_pepper] [--severities 1 5] \
        [--score-thr 0.3] [--out outputs/demo_grid.png] [--device cpu] [--ann-dir DIR]

A row per image; columns: the original, then every distortion at every severity.
Boxes, class names and scores are drawn by MMDetection's DetLocalVisualizer. For
``targeted_occlusion`` the objects to occlude are the VOC annotations in --ann-dir
(``<image stem>.xml``) when given, else the detections on the clean image.
A JSON with the drawn detections is written beside the figure.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import fq_det  # noqa: F401  (registers everything; makes mmengine checkpoints loadable)
from fq_det.datasets.distortions import DISTORTIONS, SEVERITIES
from fq_det.visualization import draw_detection_grid, read_voc_boxes


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('inputs', nargs='+', metavar='IMG [IMG ...] CONFIG CHECKPOINT',
                   help='image files, then the config and the checkpoint')
    p.add_argument('--distortions', nargs='+', default=['inpainting', 'ngrn', 'salt_pepper',
                                                        'motion_blur', 'jpeg'],
                   help=f'columns after the original; choices: {", ".join(DISTORTIONS)}')
    p.add_argument('--severities', nargs='+', type=int, default=[5], help=f'from {SEVERITIES}')
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--out', default='outputs/demo_grid.png', help='output PNG')
    p.add_argument('--device', default='cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--ann-dir', default=None, help='VOC annotations (<stem>.xml) for targeted occlusion')
    p.add_argument('--cell-px', type=int, default=320, help='width of one cell in pixels')
    args = p.parse_args(argv)
    if len(args.inputs) < 3:
        p.error('need at least one image, a config and a checkpoint')
    *args.images, args.config, args.checkpoint = args.inputs
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmdet.apis import init_detector
    model = init_detector(args.config, args.checkpoint, device=args.device)
    conditions = [('clean', 0)] + [(d, s) for d in args.distortions for s in args.severities]
    boxes = None
    if args.ann_dir:
        boxes = {}
        for img in args.images:
            xml = Path(args.ann_dir) / f'{Path(img).stem}.xml'
            if xml.is_file():
                boxes[img] = read_voc_boxes(xml)
    out = draw_detection_grid(model, args.images, conditions, args.out, score_thr=args.score_thr,
                              seed=args.seed, boxes=boxes, cell_px=args.cell_px)
    print(f"\nwrote {out['figure']} ({out['size'][0]}x{out['size'][1]} px)\nwrote {out['json']}")
    return out


if __name__ == '__main__':
    main()
