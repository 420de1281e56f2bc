"""The main job: synthetic VOC -> train plain and POW detectors -> robustness under distortion.

    python demo/main_job.py --out-dir outputs/demo          (what `make demo` runs)
    python demo/main_job.py --cfg-options data.num_train=200 train.iters=100   (smaller)

The job is the one-seed study ``configs/studies/main_job.py`` (fq_det.studies), run two
models at a time. Written under ``--out-dir``:
  * ``data/VOC2007/``: the synthetic VOC set;
  * ``runs/{plain,pow}/seed_0/``: each model's backbone pretrained on the set's object
    crops (``pretrain/backbone.pth``), the detector trained from it (``train/``), its sweep
    over every distortion and severity (``sweep/results.{json,md}``), ``run.json`` and the
    process's output (``log.txt``);
  * ``reports/main_job/``: ``study.md`` (printed at the end: clean mAP, per distortion, mPC,
    rPC, POW - plain with its interval over test images), ``study.json``, ``study.png``,
    ``robustness.png`` (+ .csv) and ``grid_{plain,pow}.png`` (detections under distortion).

Re-running reuses every finished stage and sweep pair made with the same settings; a stage
made with other settings (``--cfg-options train.iters=...``) is refused with what changed,
and ``--overwrite`` redoes it. ``--cfg-options variants.plain.pretrain=None
variants.pow.pretrain=None`` trains the detectors from scratch. The console shows the
runs' live progress; everything the models print goes to their ``log.txt``.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

# Library warnings that tell a user of the job nothing (set before the libraries load).
QUIET_WARNINGS = (
    'pkg_resources is deprecated',                  # mmengine imports pkg_resources
    r'Warning: The \w+ is out of bounds',             # mmengine's visualizer, boxes near the edge
)
for _message in QUIET_WARNINGS:
    warnings.filterwarnings('ignore', message=_message)

from mmengine.config import DictAction  # noqa: E402

import fq_det  # noqa: E402,F401  (registers the plugin, makes checkpoints loadable)
from fq_det.cli import check_output_dir, report_user_errors  # noqa: E402
from fq_det.engine.processes import output_to  # noqa: E402
from fq_det.studies import load_study, parse_runs, report_study, run_study  # noqa: E402
from fq_det.studies.figures import draw_study_figures  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / 'configs' / 'studies' / 'main_job.py'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out-dir', default='outputs/demo', help='the study folder')
    p.add_argument('--config', default=str(CONFIG), help='the study config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                   help='override values of the study dict, e.g. data.num_train=200')
    p.add_argument('--jobs', type=int, default=2, help='models trained and swept at a time')
    p.add_argument('--only', nargs='+', metavar='VARIANT:SEED', help='run only these, e.g. pow:0')
    p.add_argument('--overwrite', action='store_true',
                   help='redo the stages that were made with other settings (else refused)')
    p.add_argument('--grid-images', type=int, default=3, help='test images per detection grid')
    return p.parse_args(argv)


@report_user_errors
def main(argv: list[str] | None = None) -> dict:
    """Run the job; returns the report (``study.json``) and the figures written."""
    args = parse_args(argv)
    check_output_dir(args.out_dir, '--out-dir folder')
    study = load_study(args.config, args.out_dir, options=args.cfg_options)
    failures = run_study(study, jobs=args.jobs, only=parse_runs(args.only),
                         overwrite=args.overwrite)
    if failures:
        print('failed runs:\n  ' + '\n  '.join(failures), file=sys.stderr)
        raise SystemExit(1)
    report = report_study(study)
    with output_to(study.report_dir / 'figures.log'):
        figures = draw_study_figures(study, study.report_dir, grid_images=args.grid_images)
    print('\n' + (study.report_dir / 'study.md').read_text())
    print('Written: ' + ', '.join(f'{study.report_dir}/{n}' for n in ('study.md', 'study.json'))
          + ''.join(f', {f}' for f in figures.values()))
    return dict(report=report, figures=figures)


if __name__ == '__main__':
    main()
