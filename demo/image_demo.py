"""Detections on clean and distorted images, one figure (the supplement's Figure 4).

    python demo/image_demo.py IMG [IMG ...] CONFIG CHECKPOINT \
        [--distortions inpainting ngrn salt_pepper] [--severities 1 5] \
        [--score-thr 0.3] [--out outputs/demo_grid.png] [--device cpu] [--ann-dir DIR]
        [--occlude-detections] [--seed 0] [--cell-px 320]

A row per image; columns: the original, then every distortion at every severity, each
image distorted exactly as the robustness sweep distorts it (same seed, same pixels).
Boxes, class names and scores are drawn by MMDetection's DetLocalVisualizer. For
``targeted_occlusion`` the objects to occlude are the VOC annotations in --ann-dir
(``<image stem>.xml``, required for every image); --occlude-detections occludes the
detections on the clean image instead. Distortions, severities, --cell-px and the images
(each must be a complete image file: an empty, truncated or non-image file is named) are
checked before the model is loaded; bad input is one ``error:`` line, exit status 2. A JSON
with the drawn detections is written beside the figure.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import fq_det  # noqa: F401  (registers everything; makes mmengine checkpoints loadable)
from fq_det.cli import (check_checkpoint_matches, check_output_file, load_config,
                         report_user_errors)
from fq_det.datasets.distortions import (DISTORTIONS, SEVERITIES, check_distortion,
                                         check_severity, needs_boxes)
from fq_det.datasets.image_files import check_image_files
from fq_det.visualization import draw_detection_grid, read_voc_boxes


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive number of pixels, got {value}')
    return value


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
    p.add_argument('--occlude-detections', action='store_true',
                   help='targeted occlusion without --ann-dir: occlude the clean detections')
    p.add_argument('--cell-px', type=_positive_int, default=320, help='width of one cell in pixels')
    args = p.parse_args(argv)
    if len(args.inputs) < 3:
        p.error('need at least one image, a config and a checkpoint')
    *args.images, args.config, args.checkpoint = args.inputs
    try:
        args.distortions = [check_distortion(d) for d in args.distortions]
        args.severities = [check_severity(s) for s in args.severities]
    except ValueError as err:
        p.error(str(err))
    missing = [str(f) for f in (*args.images, args.config, args.checkpoint) if not Path(f).is_file()]
    if missing:
        p.error(f'not found: {", ".join(missing)}')
    return args


def read_annotations(images: list[str], ann_dir: str) -> dict:
    """``{image: boxes}`` from ``ann_dir/<stem>.xml``; a missing folder or file is an error."""
    if not Path(ann_dir).is_dir():
        raise FileNotFoundError(f'--ann-dir {ann_dir} is not a folder')
    boxes = {}
    for img in images:
        xml = Path(ann_dir) / f'{Path(img).stem}.xml'
        if not xml.is_file():
            raise FileNotFoundError(f'{xml} not found: targeted_occlusion needs the annotations of '
                                    f'{img} (or pass --occlude-detections)')
        boxes[img] = read_voc_boxes(xml)
    return boxes


@report_user_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    check_image_files(args.images)
    check_output_file(args.out, '--out figure')
    occlusion = any(needs_boxes(d) for d in args.distortions)
    boxes = None
    if args.ann_dir:
        boxes = read_annotations(args.images, args.ann_dir)
    elif occlusion and not args.occlude_detections:
        raise FileNotFoundError('targeted_occlusion needs the objects to occlude: pass --ann-dir '
                                'DIR (VOC <image stem>.xml files), or --occlude-detections to '
                                'occlude the detections on the clean image')
    check_checkpoint_matches(load_config(args.config), args.checkpoint, flag=None)
    from mmdet.apis import init_detector
    model = init_detector(args.config, args.checkpoint, device=args.device)
    conditions = [('clean', 0)] + [(d, s) for d in args.distortions for s in args.severities]
    out = draw_detection_grid(model, args.images, conditions, args.out, score_thr=args.score_thr,
                              seed=args.seed, boxes=boxes,
                              allow_detection_boxes=args.occlude_detections, cell_px=args.cell_px)
    print(f"\nwrote {out['figure']} ({out['size'][0]}x{out['size'][1]} px)\nwrote {out['json']}")
    return out


if __name__ == '__main__':
    main()
