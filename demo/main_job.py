"""The main job: synthetic VOC -> train plain and POW detectors -> robustness under distortion.

    python demo/main_job.py --out-dir outputs/demo          (what `make demo` runs)

The job is a one-seed robustness study (fq_det.evaluation.study) of two variants, with the
studies' stages, resume keys and result files. Steps, each written under ``--out-dir``:
  1. ``data/VOC2007/``: the synthetic VOC set (fq_det.datasets.synthetic_voc).
  2. ``runs/{plain,pow}/seed_<seed>/pretrain/backbone.pth``: each detector's backbone
     pretrained by classifying the set's object crops (configs/classification/synthvoc/),
     the stand-in for the ImageNet weights real VOC training starts from (none can be
     downloaded here); ``--no-pretrain`` trains the detectors from scratch instead.
     ``runs/{plain,pow}/seed_<seed>/train/``: a small Faster R-CNN, ResNet-18 (1/4 width)
     plain and +POW-1 (configs/synthvoc/), initialised from that backbone.
  3. ``runs/{plain,pow}/seed_<seed>/sweep/results.{json,md}``: VOC mAP50 clean and under
     every distortion and severity (fq_det.evaluation.run_robustness_sweep), per-image
     records for the bootstrap; ``run.json``: the finished run (timings, exponents).
  4. ``robustness.png`` (+ .csv): severity curves of both models (plot_robustness);
     ``grid_{plain,pow}.png``: detections on test images under distortions (draw_detection_grid).
  5. ``summary.md`` / ``summary.json``: the side-by-side table printed at the end.

Re-running reuses every finished stage and sweep pair made with the same settings; a stage
made with other settings (another ``--iters``, ``--pretrain-epochs``, ``--no-pretrain``) is
refused with what changed, and ``--overwrite`` redoes it; another data set (``--seed``,
``--num-train``, ``--num-test``, ``--size``) needs another ``--out-dir``. The console shows
one line per step and a live progress line per model; everything the models, the data
generator and the figures print goes to ``logs/``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import IO, Iterator

# Library warnings that tell a user of the job nothing (set before the libraries load, and
# inherited by the model processes, which import this module again).
QUIET_WARNINGS = (
    'pkg_resources is deprecated',                  # mmengine imports pkg_resources
    r'Warning: The \w+ is out of bounds',             # mmengine's visualizer, boxes near the edge
)
for _message in QUIET_WARNINGS:
    warnings.filterwarnings('ignore', message=_message)

import fq_det  # noqa: E402,F401  (registers the plugin, makes checkpoints loadable)
from fq_det.apis import check_output_dir, report_user_errors  # noqa: E402
from fq_det.datasets.distortions import DISTORTIONS, SEVERITIES  # noqa: E402
from fq_det.engine.processes import worker_pool  # noqa: E402
from fq_det.evaluation.study import STAGE, Study, load_study, prepare_data  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

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
    p.add_argument('--overwrite', action='store_true',
                   help='redo the stages that were made with other settings (else refused)')
    p.add_argument('--jobs', type=int, default=2,
                   help='models trained and swept at the same time (one process each)')
    p.add_argument('--bootstrap', type=int, default=1000, metavar='N',
                   help='replicates of the image bootstrap of POW - plain (0: none)')
    return p.parse_args(argv)


def job_study(args: argparse.Namespace, out: Path) -> Study:
    """The job as a one-seed study (fq_det.evaluation.study): its stages, resume keys and
    result files are the studies' own."""
    variants = {n: dict(config=str(REPO_ROOT / MODELS[n][0]), label=MODELS[n][1],
                        **({} if args.no_pretrain else {'pretrain': str(REPO_ROOT / PRETRAIN[n])}))
                for n in args.models}
    return load_study(dict(
        name='main_job', task='detection', variants=variants,
        reference='plain' if 'plain' in variants else args.models[0],
        data=dict(type='synthvoc', num_train=args.num_train, num_test=args.num_test,
                  image_size=tuple(args.size), seed=args.seed),
        seeds=[args.seed], distortions=args.distortions, severities=args.severities,
        train=dict(iters=args.iters) if args.iters else {},
        pretrain=dict(epochs=args.pretrain_epochs) if args.pretrain_epochs else {},
        bootstrap=dict(replicates=args.bootstrap)), work_dir=str(out), check_configs=False)


def run_model(name: str, out: str, args: argparse.Namespace, threads: int) -> dict:
    """Pretrain, train and sweep one model (the study's ``run_one``); its stdout/stderr go
    to ``out/logs/<name>.log``."""
    import torch

    from fq_det.evaluation.study import run_one
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with output_to(model_log(out, name)):
            return run_one(job_study(args, Path(out)), name, args.seed, overwrite=args.overwrite)
    finally:  # restored for callers that run the job in their own process (tests)
        torch.set_num_threads(saved_threads)


def model_log(out: str | Path, name: str) -> Path:
    """Where everything a model's process prints goes."""
    return Path(out) / 'logs' / f'{name}.log'


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send stdout and stderr (library logs, progress bars, warnings) to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = sys.stdout, sys.stderr
    with open(log, 'a', buffering=1) as f:
        sys.stdout = sys.stderr = f
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


# ------------------------------------------------------------------ console progress
_LOOP_PROGRESS = re.compile(r'(Iter|Epoch)\((train|val|test)\)\s*(?:\[(\d+)\])?\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'eta: ((?:\d+ days?, )?\d+:\d\d:\d\d)')
_PAIR = re.compile(r'^pair (\d+)/(\d+): (.+)$')


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class ModelProgress:
    """What one model's process is doing, read from the lines its log gained since the last
    look: the study's stage markers (``[stage] train 1200 iterations``, ``reusing ...``),
    mmengine's ``Iter(train) [i/n] ... eta:``
    lines, and the sweep's ``pair i/n`` lines (ETA from the pairs' pace)."""

    def __init__(self, label: str, log: Path) -> None:
        self.label, self.log = label, log
        self.offset = log.stat().st_size if log.is_file() else 0
        self.stage, self.total, self.detail, self.eta = 'starting', '', '', ''
        self.stage_start = time.time()

    def poll(self) -> None:
        try:
            with open(self.log, 'rb') as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        for line in data.decode(errors='replace').replace('\r', '\n').splitlines():
            self._read(line.strip())

    def _read(self, line: str) -> None:
        if line.startswith(STAGE):
            self.stage, _, self.total = line[len(STAGE):].strip().partition(' ')
            self.detail, self.eta, self.stage_start = '', '', time.time()
        elif line.startswith('reusing '):
            self.detail, self.eta = 'reused', ''
        elif (m := _LOOP_PROGRESS.search(line)) and m.group(2) == 'train':
            loop, _, epoch, i, n = m.groups()
            self.detail = (f'epoch {epoch} {i}/{n}' if loop == 'Epoch' and epoch else f'{i}/{n}')
            if eta := _ETA.search(line):
                self.eta = eta.group(1)
        elif m := _PAIR.match(line):
            i, n, label = int(m.group(1)), int(m.group(2)), m.group(3)
            self.detail = f'pair {i}/{n} {label.split(" (")[0]}'
            if i > 1:
                pace = (time.time() - self.stage_start) / (i - 1)
                self.eta = _clock(pace * (n - i + 1))

    def describe(self) -> str:
        if self.stage == 'done':
            return f'{self.label}: done'
        total = f' ({self.total})' if self.total else ''
        detail = f' {self.detail}' if self.detail else ''
        eta = f', eta {self.eta}' if self.eta else ''
        return f'{self.label}: {self.stage}{total}{detail}{eta}'


class ProgressDisplay:
    """A live line with each model's progress while the model processes run.

    On a terminal the line is rewritten in place every ``interval`` seconds; otherwise
    (a log file, CI) it is printed when a model changes stage, and at most once a minute
    in between.
    """

    def __init__(self, models: dict[str, Path], stream: IO[str], interval: float = 2.0,
                 plain_every: float = 60.0) -> None:
        self.models = [ModelProgress(label, log) for label, log in models.items()]
        self.stream, self.interval, self.plain_every = stream, interval, plain_every
        self.live = hasattr(stream, 'isatty') and stream.isatty()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.shown, self.stages, self.last_plain, self.width = '', None, 0.0, 0

    def __enter__(self) -> 'ProgressDisplay':
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        if not self.live:  # the last state, if it was not printed yet
            self.refresh()
        self._clear()

    def note(self, text: str, finished: str | None = None) -> None:
        """Print a permanent line (above the live line); ``finished``: the label of a
        model that is done, shown so from now on."""
        with self.lock:
            self._update()  # without a terminal: its last stage, if not printed yet
            for model in self.models:
                if model.label == finished:
                    model.stage = 'done'
            self.stages = [m.stage for m in self.models]
            self._clear()
            print(text, file=self.stream, flush=True)

    def refresh(self) -> None:
        with self.lock:
            self._update()

    def _update(self) -> None:
        for model in self.models:
            model.poll()
        line = '  ' + ' | '.join(m.describe() for m in self.models)
        stages = [m.stage for m in self.models]
        if self.live:
            if line != self.shown:
                pad = max(0, self.width - len(line))
                self.stream.write('\r' + line + ' ' * pad)
                self.stream.flush()
                self.shown, self.width = line, len(line)
        elif stages != self.stages or time.time() - self.last_plain >= self.plain_every:
            print(line, file=self.stream, flush=True)
            self.stages, self.last_plain = stages, time.time()

    def _clear(self) -> None:
        if self.live and self.width:
            self.stream.write('\r' + ' ' * self.width + '\r')
            self.stream.flush()
            self.shown, self.width = '', 0

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.refresh()


def draw_figures(args: argparse.Namespace, results: dict, cfgs: dict, checkpoints: dict,
                 data_root: Path, out: Path) -> dict[str, str]:
    """Severity curves of all models and a detection grid per model; returns their paths."""
    from mmdet.apis import init_detector

    from fq_det.visualization import draw_detection_grid, plot_robustness, read_voc_boxes
    figures = {'robustness': str(plot_robustness([results[n] for n in args.models],
                                                 [MODELS[n][1] for n in args.models],
                                                 out / 'robustness.png')['figure'])}
    voc = data_root / 'VOC2007'
    ids = (voc / 'ImageSets/Main/test.txt').read_text().split()[:args.grid_images]
    images = [str(voc / 'JPEGImages' / f'{i}.jpg') for i in ids]
    boxes = {p: read_voc_boxes(voc / 'Annotations' / f'{i}.xml') for p, i in zip(images, ids)}
    conditions = [('clean', 0)] + [(d, GRID_SEVERITY) for d in args.distortions]
    for name in args.models:
        model = init_detector(cfgs[name], checkpoints[name], device='cpu')
        figures[f'grid_{name}'] = str(draw_detection_grid(
            model, images, conditions, out / f'grid_{name}.png', seed=args.seed,
            boxes=boxes, progress=False)['figure'])  # its bar would write to the console
    return figures


# ------------------------------------------------------------------------- summary
def side_by_side(results: dict[str, dict], labels: dict[str, str],
                 bootstrap: dict[str, dict] | None = None) -> str:
    """Markdown: clean mAP, per-distortion mean over severities, mPC, rPC for each model;
    with two models their difference and, from ``bootstrap``, its interval over test images."""
    names = list(results)
    key = results[names[0]]['metric_key']
    diff_head = ' | POW - plain [95 % CI over test images] |' if bootstrap else ' | POW - plain |'
    head = '| | ' + ' | '.join(labels[n] for n in names) + (diff_head if len(names) == 2 else ' |')
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
            diff = f'{vals[names[1]] - vals[names[0]]:+.3f}'
            iv = (bootstrap or {}).get('P' if name == 'clean (P)' else name)
            if iv:
                diff += f' [{iv["low"]:+.3f}, {iv["high"]:+.3f}]'
            cells.append(diff)
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    if bootstrap:
        lines += ['', 'The interval resamples the test images (paired bootstrap, '
                  'fq_det.evaluation.statistics): it says how much of the difference is test-set '
                  'sampling, not training noise (one seed; see docs/studies.md).']
    return '\n'.join(lines) + '\n'


@report_user_errors
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.models = [m for m in MODELS if m in args.models]  # plain first: columns read POW - plain
    check_output_dir(args.out_dir, '--out-dir folder')
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    timings = {}

    print(f'[1/4] synthetic VOC: {args.num_train} trainval + {args.num_test} test images '
          f'{args.size[0]}x{args.size[1]}, seed {args.seed}', flush=True)
    study = job_study(args, out)
    with output_to(out / 'logs' / 'data.log'):
        data_root = prepare_data(study)
    timings['data_s'] = time.time() - t0

    jobs = max(1, min(args.jobs, len(args.models)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pretrain = 'from scratch' if args.no_pretrain else 'backbone pretrained on object crops'
    print(f'[2/4] training ({pretrain}) + [3/4] robustness sweeps ({len(args.distortions)} '
          f'distortions x {len(args.severities)} severities + clean), {jobs} model(s) at a time, '
          f'{threads} thread(s) each:', flush=True)
    for name in args.models:
        print(f'  {MODELS[name][1]:<16} {MODELS[name][0]}  log: {model_log(out, name)}', flush=True)
    runs = {}
    logs = {MODELS[n][1]: model_log(out, n) for n in args.models}
    with ProgressDisplay(logs, sys.stdout) as display:
        if jobs == 1:
            for name in args.models:
                runs[name] = run_model(name, str(out), args, threads)
                display.note(f'  {MODELS[name][1]} done ({time.time() - t0:.0f} s)',
                             finished=MODELS[name][1])
        else:
            from concurrent.futures import as_completed
            with worker_pool(jobs) as pool:
                futures = {pool.submit(run_model, n, str(out), args, threads): n for n in args.models}
                for fut in as_completed(futures):
                    runs[futures[fut]] = fut.result()
                    label = MODELS[futures[fut]][1]
                    display.note(f'  {label} done ({time.time() - t0:.0f} s)', finished=label)
    sweeps = {n: Path(runs[n]['sweep']) for n in args.models}
    results = {n: json.loads((sweeps[n] / 'results.json').read_text()) for n in args.models}
    checkpoints = {n: runs[n]['checkpoint'] for n in args.models}
    for n in args.models:
        timings.update({f'{stage[:-2]}_{n}_s': seconds
                        for stage, seconds in runs[n]['timings_s'].items()})
    cfgs = {n: str(REPO_ROOT / MODELS[n][0]) for n in args.models}

    print(f'[4/4] figures (log: {out / "logs" / "figures.log"})', flush=True)
    t = time.time()
    with output_to(out / 'logs' / 'figures.log'):
        figures = draw_figures(args, results, cfgs, checkpoints, data_root, out)
    timings['figures_s'] = time.time() - t
    timings['total_s'] = time.time() - t0

    labels = {n: MODELS[n][1] for n in args.models}
    bootstrap = None
    if args.bootstrap and set(args.models) == {'plain', 'pow'}:
        from fq_det.evaluation.study_records import sweep_bootstrap
        bootstrap = sweep_bootstrap(sweeps, 'plain', 'detection', args.distortions,
                                    args.severities, seed=args.seed,
                                    replicates=args.bootstrap)['pow']
    table = side_by_side(results, labels, bootstrap)
    written = {'data': str(data_root / 'VOC2007'),
               **{f'checkpoint_{n}': c for n, c in checkpoints.items()},
               **{f'results_{n}': str(sweeps[n] / 'results.json') for n in args.models},
               **figures, 'summary': str(out / 'summary.md')}
    pretrained = {n: {k: runs[n]['pretrain'][k] for k in ('backbone', 'top1', 'epochs')}
                  for n in args.models if runs[n]['pretrain']}
    summary = dict(args=vars(args), timings_s={k: round(v, 1) for k, v in timings.items()},
                   summary={n: r['summary'] for n, r in results.items()}, pretrained=pretrained,
                   alpha={n: runs[n]['alpha'][-1] for n in args.models if runs[n]['alpha']},
                   bootstrap_pow_minus_plain=bootstrap,
                   written=written)
    if pretrained:
        table += '\nBackbone pretraining (object-crop classification, test crops): ' + ', '.join(
            f'{MODELS[n][1]} top-1 ' + (f'{p["top1"]:.1f} %' if p['top1'] is not None else 'n/a')
            + (f' ({p["epochs"]} epochs)' if p['epochs'] else '')
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
