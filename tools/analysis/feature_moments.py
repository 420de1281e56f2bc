"""Shift of per-channel feature moments between clean and distorted images (supplement Fig. 1).

    # a detector's backbone
    python tools/analysis/feature_moments.py IMG_DIR --config CFG --checkpoint CKPT \
        --distortion salt_pepper --severity 5
    # a torchvision classifier, randomly initialised or from a local state dict
    python tools/analysis/feature_moments.py IMG_DIR --torchvision vgg16 [--weights vgg16.pth] \
        --distortion jpeg --severity 3 --layers features.2 features.12 features.28

For every chosen layer (``--layers``, module names; default: three evenly spaced
conv layers and the norm layer after each) the per-channel mean, variance, skewness
and excess kurtosis are computed over all images and positions, once clean and once
distorted (``--norm-batch-stats``: batch-norm layers use the statistics of each
batch, as in training, instead of their running statistics). Writes OUT_DIR/moment_shift.png (histograms of the per-channel shifts,
one row per layer), moment_shift.csv (per layer) and moment_shift_channels.csv. A missing
config, image folder or checkpoint, a checkpoint that is not readable, that torch's safe
loader refuses or that holds another model's weights: one ``error:`` line (exit status 2),
before any image is read.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import fq_det  # noqa: F401  (registers everything; makes mmengine checkpoints loadable)
from fq_det.analysis import (MOMENT_NAMES, build_detector_backbone, build_torchvision_model,
                             compute_feature_moment_shift, list_images)
from fq_det.analysis.feature_shift import IDENTITY, IMAGENET_MEAN, IMAGENET_STD, TORCHVISION_ARCHS
from fq_det.cli import (check_checkpoint_matches, check_output_dir, load_checkpoint_file,
                         load_config, report_user_errors)
from fq_det.visualization import plot_histogram_panels


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('image_dir', help='folder of images')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--config', help='MMDetection config: its backbone is analysed')
    src.add_argument('--torchvision', choices=TORCHVISION_ARCHS, help='a torchvision classifier')
    p.add_argument('--checkpoint', help='detector checkpoint (with --config)')
    p.add_argument('--weights', help='local torchvision state dict (default: random init)')
    p.add_argument('--distortion', required=True, help=f"distortion name, or '{IDENTITY}'")
    p.add_argument('--severity', type=int, default=3, help='1..5')
    p.add_argument('--layers', nargs='+', default=None, help='module names (default: automatic)')
    p.add_argument('--img-size', type=int, default=224, help='images are resized to a square of this side')
    p.add_argument('--max-images', type=int, default=None)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--norm-batch-stats', action='store_true',
                   help='batch-norm layers normalise with batch statistics (default: eval mode)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-dir', default='outputs/feature_moments')
    return p.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> None:
    """Named errors for a missing config, checkpoint or weights file, one that is not
    readable or not of the config's model, and an unwritable --out-dir."""
    if args.checkpoint and not args.config:
        raise ValueError('--checkpoint goes with --config; use --weights for torchvision models')
    if args.config:
        cfg = load_config(args.config)
        if args.checkpoint:
            check_checkpoint_matches(cfg, args.checkpoint, flag=None)
    if args.weights:
        load_checkpoint_file(args.weights)
    check_output_dir(args.out_dir, '--out-dir')


@report_user_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    check_inputs(args)
    if args.config:
        if not args.checkpoint:
            print(f'note: no --checkpoint: analysing randomly initialised weights (the backbone '
                  f'of {args.config} as built; no init_cfg or pretrained weights are loaded); '
                  'pass --checkpoint CKPT to analyse a trained detector', file=sys.stderr)
        model, norm = build_detector_backbone(args.config, args.checkpoint, device=args.device)
        name = Path(args.config).stem + ('' if args.checkpoint else ' (random init)')
    else:
        model = build_torchvision_model(args.torchvision, args.weights, seed=args.seed).to(args.device)
        norm = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True)
        name = args.torchvision + ('' if args.weights else ' (random init)')
    images = list_images(args.image_dir, args.max_images)
    print(f'{name}: {len(images)} images, {args.distortion} severity {args.severity}')
    result = compute_feature_moment_shift(
        model, images, args.distortion, args.severity, layers=args.layers, size=args.img_size,
        batch_size=args.batch_size, seed=args.seed, device=args.device,
        norm_batch_stats=args.norm_batch_stats, **norm)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layer_csv, chan_csv = out_dir / 'moment_shift.csv', out_dir / 'moment_shift_channels.csv'
    summary_keys = list(next(iter(result.values()))['summary'])
    with layer_csv.open('w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=['layer', 'module', 'distortion', 'severity', *summary_keys])
        w.writeheader()
        for layer, r in result.items():
            w.writerow(dict(layer=layer, module=r['module'], distortion=args.distortion,
                            severity=args.severity, **r['summary']))
    with chan_csv.open('w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['layer', 'channel', *(f'd_{m}' for m in MOMENT_NAMES)])
        for layer, r in result.items():
            for c in range(r['summary']['channels']):
                w.writerow([layer, c, *(f"{r['shift'][m][c]:.6g}" for m in MOMENT_NAMES)])
    panels = {f'{layer} [{r["module"]}]\nshift of {m}': r['shift'][m]
              for layer, r in result.items() for m in MOMENT_NAMES}
    fig = plot_histogram_panels(panels, out_dir / 'moment_shift.png', ncols=len(MOMENT_NAMES),
                                xlabel='distorted - clean (per channel)',
                                suptitle=f'{name}: {args.distortion} s{args.severity}, '
                                         f'{len(images)} images')
    print(f"{'layer':<28} {'module':<14} " + ' '.join(f'|d {m}|'.rjust(13) for m in MOMENT_NAMES))
    for layer, r in result.items():
        print(f"{layer:<28} {r['module']:<14} "
              + ' '.join(f"{r['summary'][f'mean_abs_d_{m}']:13.4g}" for m in MOMENT_NAMES))
    print(f'\nwrote {fig}\nwrote {layer_csv}\nwrote {chan_csv}')
    return {'figure': fig, 'csv': layer_csv, 'channels_csv': chan_csv, 'result': result}


if __name__ == '__main__':
    main()
