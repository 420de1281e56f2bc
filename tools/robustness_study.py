"""Robustness study: several variants x seeds, trained, swept, compared with intervals.

    python tools/robustness_study.py plan   STUDY_CONFIG   # one command per run, for any scheduler
    python tools/robustness_study.py run    STUDY_CONFIG --jobs 2          # all unfinished runs here
    python tools/robustness_study.py run    STUDY_CONFIG --only pow1:0     # one run (what plan prints)
    python tools/robustness_study.py run    STUDY_CONFIG --executor slurm --gpus 1 --time-min 240
                                            # one SLURM job per run, through submitit
    python tools/robustness_study.py report STUDY_CONFIG   # study.json / study.md / study.png
    python tools/robustness_study.py run    STUDY_CONFIG --cfg-options seeds=[0,1] train.iters=300
    python tools/robustness_study.py export STUDY_CONFIG DIR   # the small result files, to commit

Every run and every sweep pair resumes where it stopped; `report` aggregates whatever has
finished and lists what is missing. See docs/studies.md.
"""
from __future__ import annotations

import argparse
import sys

from mmengine.config import DictAction

import fq_det  # noqa: F401  (first: registers the plugin, quiets the stack's import warnings)
from fq_det.cli import report_user_errors
from fq_det.studies import (export_results, load_study, parse_runs, plan_study, report_study,
                            run_study)
from fq_det.studies.dispatch import EXECUTORS

#: A submitit job's resources per run (over the study config's ``cluster`` dict).
RESOURCE_FLAGS = (
    ('--gpus', int, 'GPUs per run (job)'),
    ('--cpus', int, 'CPUs per run (job)'),
    ('--time-min', int, "time limit per run in minutes (needed on SLURM; submitit's default "
     'is 5 minutes)'),
    ('--mem-gb', float, 'memory per run in GB'),
    ('--partition', str, 'SLURM partition'))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest='command', required=True)
    for name, text in (('plan', 'print one shell command per (variant, seed) run'),
                       ('run', 'run the unfinished runs on this machine'),
                       ('report', 'aggregate the finished runs'),
                       ('export', 'copy the finished runs\' small result files and reports')):
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument('config', help='study config (configs/studies/*.py)')
        s.add_argument('--work-dir', help='study folder (default: work_dirs/studies/<name>)')
        s.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                       metavar='KEY=VALUE', help='override values of the study dict, e.g. '
                       'data.num_train=40 train.iters=10 seeds=[0,1]')
        if name == 'run':
            s.add_argument('--executor', choices=EXECUTORS, default='pool',
                           help='pool: processes of this machine (default); local / slurm: one '
                           'submitit job per run, here or submitted to SLURM')
            s.add_argument('--jobs', type=int, default=None,
                           help='runs at the same time (default: 1; with --executor slurm, all)')
            s.add_argument('--threads', type=int, default=None,
                           help='torch threads per run (default: --cpus, else cores / jobs; on '
                           'SLURM the job\'s CPUs)')
            for flag, kind, text in RESOURCE_FLAGS:
                s.add_argument(flag, type=kind, default=None, help=text)
            s.add_argument('--only', nargs='+', metavar='VARIANT:SEED',
                           help='run only these runs (default: every unfinished run)')
            s.add_argument('--overwrite', action='store_true',
                           help='redo runs and stages made with other settings instead of refusing')
            s.add_argument('--no-report', action='store_true', help='skip the report at the end')
        if name == 'export':
            s.add_argument('dest', help='folder to copy into (same layout as the study folder)')
        if name == 'report':
            s.add_argument('--out-dir', help='where study.json/.md/.png go '
                           '(default: <work dir>/reports/<study name>)')
    return p.parse_args(argv)


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 some runs failed (listed), 2 bad input (one ``error:`` line)."""
    args = parse_args(argv)
    study = load_study(args.config, args.work_dir, options=args.cfg_options)
    if args.command == 'plan':
        print('\n'.join(plan_study(study, python=sys.executable)))
        return 0
    if args.command == 'export':
        copied = export_results(study, args.dest)
        print(f'copied {len(copied)} files into {args.dest}')
        return 0
    if args.command == 'report':
        report_study(study, args.out_dir)
        out = args.out_dir or study.report_dir
        print(open(f'{out}/study.md').read())
        print(f'written: {out}/study.json, study.md, study.png')
        return 0
    resources = {flag[2:].replace('-', '_'): getattr(args, flag[2:].replace('-', '_'))
                 for flag, _, _ in RESOURCE_FLAGS}
    failures = run_study(study, jobs=args.jobs, only=parse_runs(args.only), overwrite=args.overwrite,
                         threads=args.threads, report=not args.no_report, executor=args.executor,
                         resources=resources)
    if not args.no_report:
        try:
            report = report_study(study)
            print(f'report: {study.report_dir}/study.md ({report["finished"]}/'
                  f'{report["total"]} runs finished)')
        except FileNotFoundError as err:
            print(f'no report yet: {err}')
    if failures:
        print('failed runs:\n  ' + '\n  '.join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
