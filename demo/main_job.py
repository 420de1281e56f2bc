"""The main job: synthetic VOC -> train plain and POW detectors -> robustness under distortion.

    python demo/main_job.py --out-dir outputs/demo          (what `make demo` runs)

Steps, each written under ``--out-dir``:
  1. ``data/VOC2007/``: the synthetic VOC set (fq_det.datasets.synthetic_voc).
  2. ``work_dirs/{plain,pow}/``: a small Faster R-CNN, ResNet-18 (1/4 width, from scratch)
     plain and +POW-1 (configs/synthvoc/), trained for ``--iters`` iterations.
  3. ``robustness/{plain,pow}/results.{json,md}``: VOC mAP50 clean and under every distortion
     and severity (fq_det.evaluation.run_robustness_sweep).
  4. ``robustness.png`` (+ .csv): severity curves of both models (plot_robustness);
     ``grid_{plain,pow}.png``: detections on test images under distortions (draw_detection_grid).
  5. ``summary.md`` / ``summary.json``: the side-by-side table printed at the end.

Re-running reuses a finished training (its final checkpoint) and finished sweep pairs.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import fq_det  # noqa: E402,F401  (registers the plugin, makes checkpoints loadable)
from fq_det.datasets.data_check import set_data_root  # noqa: E402
from fq_det.datasets.distortions import DISTORTIONS, SEVERITIES  # noqa: E402
from fq_det.datasets.synthetic_voc import make_synthetic_voc  # noqa: E402

MODELS = {  # name -> (config, label)
    'plain': ('configs/synthvoc/faster_rcnn_r18_synthvoc.py', 'ResNet-18'),
    'pow': ('configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py', 'ResNet-18+POW-1'),
}
GRID_SEVERITY = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out-dir', default='outputs/demo')
    p.add_argument('--num-train', type=int, default=300, help='synthetic trainval images')
    p.add_argument('--num-test', type=int, default=60, help='synthetic test images')
    p.add_argument('--size', type=int, nargs=2, default=(256, 192), metavar=('W', 'H'),
                   help='synthetic image size (the configs resize to 256x192)')
    p.add_argument('--iters', type=int, default=None,
                   help="training iterations per model (default: the configs' max_iters)")
    p.add_argument('--distortions', nargs='+', default=list(DISTORTIONS), choices=DISTORTIONS)
    p.add_argument('--severities', type=int, nargs='+', default=list(SEVERITIES), choices=SEVERITIES)
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--grid-images', type=int, default=3, help='test images in each detection grid')
    p.add_argument('--seed', type=int, default=0, help='data, training and distortion seed')
    p.add_argument('--retrain', action='store_true', help='train even if a final checkpoint exists')
    return p.parse_args(argv)


def set_schedule(cfg, iters: int) -> None:
    """Scale the synthvoc configs' iteration schedule (warm-up, steps, checkpoints) to ``iters``."""
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':
            sched.end = iters
            sched.milestones = [int(iters * 0.75), int(iters * 0.9)]
        elif sched.type == 'LinearLR':
            sched.end = min(sched.end, max(1, iters // 10))
    cfg.default_hooks.checkpoint.interval = iters


def load_cfg(config: str, data_root: Path, work_dir: Path, iters: int | None, seed: int):
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO_ROOT / config))
    set_data_root(cfg, str(data_root))
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    if iters is not None:
        set_schedule(cfg, iters)
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    return cfg


def train(cfg, retrain: bool) -> str:
    """Train (or reuse a finished run); return the final checkpoint path."""
    from mmengine.runner import Runner
    final = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if osp.isfile(final) and not retrain:
        print(f'  reusing {final}')
        return final
    runner = Runner.from_cfg(cfg)
    runner.train()
    return final


def side_by_side(results: dict[str, dict], labels: dict[str, str]) -> str:
    """Markdown: clean mAP, per-distortion mean over severities, mPC, rPC for each model."""
    names = list(results)
    key = results[names[0]]['metric_key']
    head = '| | ' + ' | '.join(labels[n] for n in names) + (' | POW - plain |' if len(names) == 2 else ' |')
    rule = '|---' * (len(names) + 1 + (len(names) == 2)) + '|'
    rows = [('clean (P)', {n: r['summary']['P'] for n, r in results.items()})]
    for d in results[names[0]]['summary']['per_distortion']:
        rows.append((d, {n: r['summary']['per_distortion'].get(d, float('nan')) for n, r in results.items()}))
    rows.append(('mPC', {n: r['summary']['mPC'] for n, r in results.items()}))
    rows.append(('rPC', {n: r['summary']['rPC'] for n, r in results.items()}))
    lines = [f'{key} (distortions: mean over severities)', '', head, rule]
    for name, vals in rows:
        cells = [f'{vals[n]:.3f}' for n in names]
        if len(names) == 2:
            cells.append(f'{vals[names[1]] - vals[names[0]]:+.3f}')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    timings = {}

    print(f'[1/4] synthetic VOC: {args.num_train} trainval + {args.num_test} test images '
          f'{args.size[0]}x{args.size[1]}, seed {args.seed}')
    data_root = out / 'data'
    if not (data_root / 'VOC2007' / 'ImageSets' / 'Main' / 'test.txt').is_file():
        make_synthetic_voc(data_root, args.num_train, args.num_test, seed=args.seed,
                           image_size=tuple(args.size))
    timings['data_s'] = time.time() - t0

    from fq_det.evaluation import run_robustness_sweep
    results, checkpoints, cfgs = {}, {}, {}
    for i, name in enumerate(args.models):
        config, label = MODELS[name]
        cfg = load_cfg(config, data_root, out / 'work_dirs' / name, args.iters, args.seed)
        cfgs[name] = cfg
        print(f'[2/4] training {label} ({config}, {cfg.train_cfg.max_iters} iterations)')
        t = time.time()
        checkpoints[name] = train(cfg, args.retrain)
        timings[f'train_{name}_s'] = time.time() - t
        print(f'[3/4] robustness sweep of {label}: clean + {len(args.distortions)} distortions '
              f'x {len(args.severities)} severities')
        t = time.time()
        results[name] = run_robustness_sweep(cfg, checkpoints[name], str(out / 'robustness' / name),
                                             distortions=args.distortions, severities=args.severities,
                                             seed=args.seed)
        timings[f'sweep_{name}_s'] = time.time() - t

    print('[4/4] figures')
    t = time.time()
    figures = {}
    from fq_det.visualization import plot_robustness
    figures['robustness'] = str(plot_robustness([results[n] for n in args.models],
                                                [MODELS[n][1] for n in args.models],
                                                out / 'robustness.png')['figure'])
    try:
        from mmdet.apis import init_detector
        from fq_det.visualization import draw_detection_grid, read_voc_boxes
        voc = data_root / 'VOC2007'
        ids = (voc / 'ImageSets/Main/test.txt').read_text().split()[:args.grid_images]
        images = [str(voc / 'JPEGImages' / f'{i}.jpg') for i in ids]
        boxes = {p: read_voc_boxes(voc / 'Annotations' / f'{i}.xml') for p, i in zip(images, ids)}
        conditions = [('clean', 0)] + [(d, GRID_SEVERITY) for d in args.distortions]
        for name in args.models:
            model = init_detector(cfgs[name], checkpoints[name], device='cpu')
            figures[f'grid_{name}'] = str(draw_detection_grid(
                model, images, conditions, out / f'grid_{name}.png', seed=args.seed, boxes=boxes)['figure'])
    except ImportError as err:  # visualization not available in this checkout
        print(f'  detection grid skipped: {err}')
    timings['figures_s'] = time.time() - t
    timings['total_s'] = time.time() - t0

    labels = {n: MODELS[n][1] for n in args.models}
    table = side_by_side(results, labels)
    written = {'data': str(data_root / 'VOC2007'),
               **{f'checkpoint_{n}': c for n, c in checkpoints.items()},
               **{f'results_{n}': str(out / 'robustness' / n / 'results.json') for n in args.models},
               **figures, 'summary': str(out / 'summary.md')}
    summary = dict(args=vars(args), timings_s={k: round(v, 1) for k, v in timings.items()},
                   summary={n: r['summary'] for n, r in results.items()}, written=written)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    (out / 'summary.md').write_text(
        '# fq-det main job\n\n' + table + '\n' + '\n'.join(f'- {k}: `{v}`' for k, v in written.items())
        + f'\n\nTotal time: {timings["total_s"]:.0f} s\n')
    print('\n' + table)
    print('Written:')
    for k, v in written.items():
        print(f'  {k:<18} {v}')
    print(f'Total time: {timings["total_s"]:.0f} s '
          f'({", ".join(f"{k[:-2]} {v:.0f}s" for k, v in timings.items() if k != "total_s")})')
    return summary


if __name__ == '__main__':
    main()
