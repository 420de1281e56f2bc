"""The main job: synthetic VOC -> train plain and POW detectors -> robustness under distortion.

    python demo/main_job.py --out-dir outputs/demo          (what `make demo` runs)

Steps, each written under ``--out-dir``:
  1. ``data/VOC2007/``: the synthetic VOC set (fq_det.datasets.synthetic_voc).
  2. ``work_dirs/pretrain_{plain,pow}/backbone.pth``: each detector's backbone pretrained by
     classifying the set's object crops (fq_det.classification, configs/classification/synthvoc/),
     the stand-in for the ImageNet weights real VOC training starts from (none can be
     downloaded here); ``--no-pretrain`` trains the detectors from scratch instead.
     ``work_dirs/{plain,pow}/``: a small Faster R-CNN, ResNet-18 (1/4 width) plain and
     +POW-1 (configs/synthvoc/), initialised from that backbone, trained for ``--iters``.
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
PRETRAIN = {  # name -> classification config with the same backbone as MODELS[name]
    'plain': 'configs/classification/synthvoc/resnet18_synthvoc-crops.py',
    'pow': 'configs/classification/synthvoc/resnet18-pow1-l1_synthvoc-crops.py',
}
GRID_SEVERITY = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out-dir', default='outputs/demo')
    p.add_argument('--num-train', type=int, default=2000, help='synthetic trainval images')
    p.add_argument('--num-test', type=int, default=60, help='synthetic test images')
    p.add_argument('--size', type=int, nargs=2, default=(160, 120), metavar=('W', 'H'),
                   help='synthetic image size (the configs resize to 160x120)')
    p.add_argument('--iters', type=int, default=None,
                   help="detector training iterations per model (default: the configs' max_iters)")
    p.add_argument('--pretrain-epochs', type=int, default=None,
                   help="backbone pretraining epochs (default: the classification configs')")
    p.add_argument('--no-pretrain', action='store_true',
                   help='train the detectors from scratch (no backbone pretraining)')
    p.add_argument('--distortions', nargs='+', default=list(DISTORTIONS), choices=DISTORTIONS)
    p.add_argument('--severities', type=int, nargs='+', default=list(SEVERITIES), choices=SEVERITIES)
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--grid-images', type=int, default=3, help='test images in each detection grid')
    p.add_argument('--seed', type=int, default=0, help='data, training and distortion seed')
    p.add_argument('--retrain', action='store_true', help='train even if a final checkpoint exists')
    p.add_argument('--jobs', type=int, default=2,
                   help='models trained and swept at the same time (one process each)')
    return p.parse_args(argv)


def set_schedule(cfg, iters: int) -> None:
    """Scale the synthvoc configs' iteration schedule (warm-up, steps, checkpoints) to ``iters``."""
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    for sched in cfg.param_scheduler:
        if sched.type == 'MultiStepLR':
            sched.end = iters
            sched.milestones = [int(iters * 0.5), int(iters * 0.8)]
        elif sched.type == 'LinearLR':
            sched.end = min(sched.end, max(1, iters // 10))
    cfg.default_hooks.checkpoint.interval = iters


def load_cfg(config: str, data_root: Path, work_dir: Path, iters: int | None, seed: int,
             backbone: str | None = None):
    """Detector config for the job; ``backbone``: a pretrained backbone checkpoint to start from."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO_ROOT / config))
    set_data_root(cfg, str(data_root))
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    if iters:
        set_schedule(cfg, iters)
    if backbone:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(backbone))
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.visualizer.name = f'visualizer_{work_dir.name}'  # one per model when run in one process
    return cfg


def pretrain_backbone(name: str, data_root: Path, work_root: Path, epochs: int | None, seed: int,
                      retrain: bool) -> dict:
    """Classify the object crops with the detector's backbone; export it for ``Pretrained``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from fq_det.classification import export_backbone
    work_dir = work_root / f'pretrain_{name}'
    backbone = work_dir / 'backbone.pth'
    result_file = work_dir / 'pretrain.json'
    if backbone.is_file() and result_file.is_file() and not retrain:
        print(f'reusing {backbone}')
        return json.loads(result_file.read_text())
    cfg = Config.fromfile(str(REPO_ROOT / PRETRAIN[name]))
    set_data_root(cfg, str(data_root))
    if epochs is not None:
        cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = epochs
        cfg.default_hooks.checkpoint.interval = epochs
        for sched in cfg.param_scheduler:
            if sched.type == 'CosineAnnealingLR':
                sched.begin, sched.end = min(1, epochs - 1), epochs
                sched.T_max = max(1, epochs - sched.begin)
            elif sched.type == 'LinearLR':
                sched.end = min(sched.end, epochs)
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = f'pretrain_{name}'
    cfg.visualizer.name = f'visualizer_pretrain_{name}'
    runner = Runner.from_cfg(cfg)
    runner.train()  # validates on the test split's crops after the last epoch
    top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
    checkpoint = work_dir / f'epoch_{cfg.train_cfg.max_epochs}.pth'
    exported = export_backbone(checkpoint, backbone)
    result = dict(backbone=str(backbone), top1=float(top1),
                  epochs=cfg.train_cfg.max_epochs, num_train_crops=len(runner.train_dataloader.dataset),
                  num_params=exported['num_params'])
    result_file.write_text(json.dumps(result, indent=2))
    return result


def train(cfg, retrain: bool) -> str:
    """Train (or reuse a finished run); return the final checkpoint path."""
    from mmengine.runner import Runner
    final = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if osp.isfile(final) and not retrain:
        print(f'reusing {final}')
        return final
    # The clean evaluation is the sweep's first pair: no validation during training.
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    return final


def run_model(name: str, out: str, args: argparse.Namespace, threads: int) -> dict:
    """Pretrain, train and sweep one model; stdout/stderr go to ``out/logs/<name>.log``."""
    import torch
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    log = Path(out) / 'logs' / f'{name}.log'
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = sys.stdout, sys.stderr
    with open(log, 'a', buffering=1) as f:
        sys.stdout = sys.stderr = f
        try:
            return _train_and_sweep(name, out, args, log)
        finally:  # restored for callers that run the job in their own process (tests)
            sys.stdout, sys.stderr = saved
            torch.set_num_threads(saved_threads)


def _train_and_sweep(name: str, out: str, args: argparse.Namespace, log: Path) -> dict:
    from fq_det.evaluation import run_robustness_sweep
    t = time.time()
    pretrained = None
    if not args.no_pretrain:
        pretrained = pretrain_backbone(name, Path(out) / 'data', Path(out) / 'work_dirs',
                                       args.pretrain_epochs, args.seed, args.retrain)
    t_pretrain = time.time() - t
    cfg = load_cfg(MODELS[name][0], Path(out) / 'data', Path(out) / 'work_dirs' / name, args.iters,
                   args.seed, backbone=pretrained['backbone'] if pretrained else None)
    t = time.time()
    checkpoint = train(cfg, args.retrain)
    t_train = time.time() - t
    results = run_robustness_sweep(cfg, checkpoint, str(Path(out) / 'robustness' / name),
                                   distortions=args.distortions, severities=args.severities, seed=args.seed)
    return dict(checkpoint=checkpoint, results=results, pretrained=pretrained, pretrain_s=t_pretrain,
                train_s=t_train, sweep_s=time.time() - t - t_train, log=str(log))


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
                           image_size=tuple(args.size), workers=max(1, min(4, os.cpu_count() or 1)))
    timings['data_s'] = time.time() - t0

    jobs = max(1, min(args.jobs, len(args.models)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pretrain = 'from scratch' if args.no_pretrain else 'backbone pretrained on object crops'
    print(f'[2/4] training ({pretrain}) + [3/4] robustness sweeps ({len(args.distortions)} '
          f'distortions x {len(args.severities)} severities + clean), {jobs} model(s) at a time, '
          f'{threads} thread(s) each:')
    for name in args.models:
        print(f'  {MODELS[name][1]:<16} {MODELS[name][0]}  log: {out / "logs" / (name + ".log")}')
    outcomes = {}
    if jobs == 1:
        for name in args.models:
            outcomes[name] = run_model(name, str(out), args, threads)
            print(f'  {MODELS[name][1]} done')
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context('spawn')) as pool:
            futures = {pool.submit(run_model, n, str(out), args, threads): n for n in args.models}
            for fut in as_completed(futures):
                outcomes[futures[fut]] = fut.result()
                print(f'  {MODELS[futures[fut]][1]} done ({time.time() - t0:.0f} s)')
    results = {n: outcomes[n]['results'] for n in args.models}
    checkpoints = {n: outcomes[n]['checkpoint'] for n in args.models}
    for n in args.models:
        if outcomes[n]['pretrained']:
            timings[f'pretrain_{n}_s'] = outcomes[n]['pretrain_s']
        timings[f'train_{n}_s'] = outcomes[n]['train_s']
        timings[f'sweep_{n}_s'] = outcomes[n]['sweep_s']
    cfgs = {n: load_cfg(MODELS[n][0], data_root, out / 'work_dirs' / n, args.iters, args.seed)
            for n in args.models}

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
    pretrained = {n: outcomes[n]['pretrained'] for n in args.models if outcomes[n]['pretrained']}
    summary = dict(args=vars(args), timings_s={k: round(v, 1) for k, v in timings.items()},
                   summary={n: r['summary'] for n, r in results.items()}, pretrained=pretrained,
                   written=written)
    if pretrained:
        table += '\nBackbone pretraining (object-crop classification, test crops): ' + ', '.join(
            f'{MODELS[n][1]} top-1 {p["top1"]:.1f} % ({p["epochs"]} epochs, {p["num_train_crops"]} crops)'
            for n, p in pretrained.items()) + '\n'
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
