"""Moment shift under distortion, per layer, with and without test-time BN adaptation, for
several models side by side (fq_det.analysis.moment_hypothesis).

    # crop classifiers (their backbones are the detectors'), on the test split's object crops
    python tools/analysis/moment_hypothesis.py --crops-from DATA_ROOT \
        --model plain CFG CKPT --model pow1 CFG CKPT --distortion ngrn --severity 5
    # detectors' backbones, on a folder of images
    python tools/analysis/moment_hypothesis.py --images DIR --detector \
        --model plain CFG CKPT --model pow1 CFG CKPT --distortion salt_pepper --severity 5

Writes OUT_DIR/moment_hypothesis.{md,json,png}. A missing config or checkpoint, a checkpoint
that is not readable, that torch's safe loader refuses or that holds another model's
weights: one ``error:`` line naming it (exit status 2), before any model is built.
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from fq_det.cli import report_user_errors  # (imports fq_det: quiets the stack)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--images', help='folder of images')
    src.add_argument('--crops-from', help='VOC-layout data root: use its test split\'s object crops')
    p.add_argument('--model', nargs=3, action='append', required=True,
                   metavar=('LABEL', 'CONFIG', 'CHECKPOINT'), help='repeat for each model')
    p.add_argument('--detector', action='store_true',
                   help='the configs are detectors (default: classification-module configs)')
    p.add_argument('--distortion', required=True)
    p.add_argument('--severity', type=int, default=5)
    p.add_argument('--bn-prior', type=float, default=0.0,
                   help='prior strength N of the BN adaptation (0: test statistics only)')
    p.add_argument('--max-images', type=int, default=512)
    p.add_argument('--layers', nargs='+', help='module names (default: per stage, last BN and '
                   'block output)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default='work_dirs/moment_hypothesis')
    return p.parse_args(argv)


def check_models(models: list[list[str]]) -> None:
    """Each ``(label, config, checkpoint)``: the config loads, the checkpoint is readable and
    holds that config's model (named errors otherwise)."""
    from fq_det.cli import check_checkpoint_matches, load_config
    for label, cfg, ckpt in models:
        check_checkpoint_matches(load_config(cfg), ckpt, flag=None)


@report_user_errors
def main(argv=None) -> dict:
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
    args = parse_args(argv)
    import fq_det  # noqa: F401  (registers everything; makes checkpoints loadable)
    from fq_det.analysis.feature_shift import build_detector_backbone, list_images
    from fq_det.analysis.moment_hypothesis import (build_classifier_backbone,
                                                   compare_moment_shifts, format_comparison,
                                                   plot_comparison, save_crops)
    from fq_det.cli import check_output_dir
    from fq_det.datasets.distortions import check_distortion, check_severity
    check_distortion(args.distortion)
    check_severity(args.severity)
    check_models(args.model)
    out = Path(args.out_dir)
    check_output_dir(out, '--out-dir')
    if args.crops_from:
        images = save_crops(args.crops_from, out / 'crops', args.max_images)
    else:
        images = list_images(args.images, args.max_images)
    build = build_detector_backbone if args.detector else build_classifier_backbone
    models = {label: build(cfg, ckpt) for label, cfg, ckpt in args.model}
    result = compare_moment_shifts(models, images, args.distortion, args.severity,
                                   layers=args.layers, bn_prior=args.bn_prior, seed=args.seed)
    text = format_comparison(result, args.distortion, args.severity)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'moment_hypothesis.md').write_text(text)
    (out / 'moment_hypothesis.json').write_text(json.dumps(dict(
        distortion=args.distortion, severity=args.severity, bn_prior=args.bn_prior,
        images=len(images),
        models={label: dict(config=cfg, checkpoint=ckpt) for label, cfg, ckpt in args.model},
        shifts=result), indent=1))
    plot_comparison(result, out / 'moment_hypothesis.png', f'{args.distortion} {args.severity}: '
                    f'|moment shift| per layer, {len(images)} images')
    print(text)
    print(f'written: {out}/moment_hypothesis.md, .json, .png')
    return result


if __name__ == '__main__':
    main()
