"""Evaluate a trained detector on a config's test split; follows MMDetection 3.x's tools/test.py (same flags, plus --data-root and --allow-partial-load).

    python tools/test.py configs/faster_rcnn_r50_pow.py work_dirs/faster_rcnn_r50_pow/epoch_4.pth
    python tools/test.py CONFIG CKPT --out results.pkl --show-dir vis --tta
    bash tools/dist_test.sh CONFIG CKPT 8
"""
from __future__ import annotations

import argparse
import copy

import fq_det  # noqa: F401  (first: registers the plugin, quiets the stack's import warnings)
from mmengine.config import ConfigDict
from fq_det.cli import (add_config_args, add_launcher_args, build_runner,
                         check_checkpoint_matches, check_output_dir, check_output_file,
                         config_from_args, end_process_group, report_user_errors)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the metrics log goes (default: work_dirs/<config name>)')
    add_config_args(parser)
    parser.add_argument('--out', help='also dump the predictions to this .pkl file')
    parser.add_argument('--show-dir', help='draw predictions into this folder (inside the run\'s '
                        'timestamped work dir)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (flip)')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help="evaluate a checkpoint that lacks some of the model's weights (they "
                        'keep their initial values) or holds others')
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must end in .pkl or .pickle, got {args.out!r}')
    return args


def add_flip_tta(cfg) -> None:
    """Wrap the model in MMDetection's DetTTAModel with a flip / no-flip test pipeline."""
    cfg.setdefault('tta_model', dict(type='DetTTAModel',
                                     tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
    if 'tta_pipeline' not in cfg:
        leaf = cfg.test_dataloader.dataset
        while 'dataset' in leaf:
            leaf = leaf['dataset']
        pipeline = copy.deepcopy(leaf.pipeline)
        pack = dict(pipeline[-1])
        pack['meta_keys'] = tuple(pack.get('meta_keys', ())) + ('flip', 'flip_direction')
        pipeline[-1] = dict(type='TestTimeAug', transforms=[
            [dict(type='RandomFlip', prob=1.0), dict(type='RandomFlip', prob=0.0)], [pack]])
        cfg.tta_pipeline = pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    leaf = cfg.test_dataloader.dataset
    while 'dataset' in leaf:
        leaf = leaf['dataset']
    leaf.pipeline = cfg.tta_pipeline


@report_user_errors
def main(argv: list[str] | None = None) -> dict:
    """Run the test loop; return its metrics (e.g. ``pascal_voc/mAP``)."""
    args = parse_args(argv)
    cfg = config_from_args(args, splits=('test',))
    if args.out:
        check_output_file(args.out, '--out file')
    if args.show_dir:
        check_output_dir(args.show_dir, '--show-dir folder')
    check_checkpoint_matches(cfg, args.checkpoint, allow_partial=args.allow_partial_load)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        add_flip_tta(cfg)

    runner = build_runner(cfg)
    if args.out:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    main()
    end_process_group()  # only after success: a failed rank exits without waiting
