"""Running a study: one run (:func:`run_one`: its stages, then ``run.json``), all of a
study's unfinished runs through one of the dispatch routes (:func:`run_study`), or the shell
commands of its runs for any scheduler (:func:`plan_study`)."""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Mapping, Sequence

from fq_det.engine.processes import output_to
from fq_det.studies.config import Study, load_study
from fq_det.studies.dispatch import EXECUTORS, check_resources, dispatch
from fq_det.studies.errors import StudyError
from fq_det.studies.progress import ProgressDisplay
from fq_det.studies.records import load_sweep_records, save_compact_records
from fq_det.studies.run_folder import (RECORDS_FILE, RUN_RECORD, STAGE, changed_settings, count,
                                       prepare_data, write_record)
from fq_det.studies.stages import alpha_report, sweep, train_run
from fq_det.utils.io import check_writable, file_lock

__all__ = ['run_one', 'run_study', 'plan_study', 'parse_runs', 'LOCAL_TIME_MIN']


def run_one(study: Study, variant: str, seed: int, overwrite: bool = False) -> dict:
    """Pretrain (if asked), train, sweep and summarise one ``(variant, seed)``; resumable.

    A variant with ``train_as`` evaluates that variant's trained model (training it first if
    needed) with its own test-time settings (``bn_adapt``).
    """
    if variant not in study.variants:
        raise StudyError(f'unknown variant {variant!r}; the study has {", ".join(study.variants)}')
    if seed not in study.seeds:
        raise StudyError(f'seed {seed} is not among the study seeds {list(study.seeds)}')
    v = study.variants[variant]
    run_dir = study.run_dir(variant, seed)
    cfg, checkpoint, pretrained, trained, timings = train_run(study, v.train_as or variant, seed,
                                                              overwrite)
    if v.bn_adapt:
        from fq_det.engine.bn_adapt import add_bn_adapt_hook
        add_bn_adapt_hook(cfg, **v.bn_adapt)
    t = time.time()
    pairs = 1 + len(study.distortions) * len(study.severities)
    print(f'{STAGE} sweep {count(pairs, "pair")}', flush=True)
    results = sweep(study, cfg, checkpoint, run_dir / 'sweep', seed, overwrite)
    timings['sweep_s'] = time.time() - t
    save_compact_records(load_sweep_records(run_dir / 'sweep', study.task, study.distortions,
                                            study.severities, seed),
                         study.task, run_dir / RECORDS_FILE)
    record = dict(variant=variant, seed=seed, trained_as=v.train_as or variant,
                  bn_adapt=v.bn_adapt, train_key=trained['key'], timings_s=timings,
                  pretrain=({k: pretrained.get(k) for k in ('backbone', 'top1', 'epochs', 'curve')}
                            if pretrained else None),
                  checkpoint=checkpoint, curve=trained['curve'], val_top1=trained.get('top1'),
                  alpha=alpha_report(cfg, checkpoint), metric_key=results['metric_key'],
                  sweep=str(run_dir / 'sweep'))
    write_record(run_dir / RUN_RECORD, record)
    return record


def _run_claimed(run_dir: Path):
    """An exclusive, non-blocking lock on ``<run dir>/.run.lock`` for the ``with`` block: a
    second process on the same run (another ``run``, a job submitted twice) is refused
    instead of writing into the same folder."""
    def busy(path: Path) -> StudyError:
        return StudyError(f'{run_dir} is being run by another process (it holds {path}); '
                          'wait for it to end or stop it')
    return file_lock(run_dir / '.run.lock', blocking=False, busy=busy)


def _run_logged(config_file: str, work_dir: str, options: dict, variant: str, seed: int,
                threads: int | None, overwrite: bool) -> tuple[str, int, float, str | None]:
    """The entry of every route (a pool process, a submitit job): one run, its output in
    ``<run dir>/log.txt``; ``threads`` torch threads (None: the CPUs this process may use,
    e.g. a SLURM job's allocation)."""
    import torch
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    study = load_study(config_file, work_dir, check_configs=False, options=options)
    run_dir = study.run_dir(variant, seed)
    log = run_dir / 'log.txt'
    t = time.time()
    with output_to(log):
        try:
            import fq_det  # noqa: F401  (registers the plugin in the worker)
            with _run_claimed(run_dir):
                run_one(study, variant, seed, overwrite)
            return variant, seed, time.time() - t, None
        except Exception as err:  # noqa: BLE001  (reported by the parent, run by run)
            traceback.print_exc()
            return variant, seed, time.time() - t, f'{type(err).__name__}: {err} (log: {log})'


#: A local submitit job's time limit when none is given (submitit's own is 2 minutes).
LOCAL_TIME_MIN = 7 * 24 * 60


def _run_resources(study: Study, executor: str, jobs: int | None, threads: int | None,
                   given: Mapping | None) -> dict:
    """The checked arguments of :func:`run_study`: a submitit job's resources, the flags
    (``given``) over the study's ``cluster``."""
    if executor not in EXECUTORS:
        raise StudyError(f'--executor must be one of {", ".join(EXECUTORS)}, got {executor!r}')
    if not study.config_file:
        raise StudyError('run_study needs a study loaded from a config file (worker processes '
                         're-read it)')
    if jobs is not None and (isinstance(jobs, bool) or jobs < 1):
        raise StudyError(f'--jobs must be >= 1, got {jobs}')
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise StudyError(f'--threads must be >= 1 (default: cores / jobs), got {threads}')
    flags = check_resources(given, 'run resources')
    if executor == 'pool':
        if flags:
            named = ', '.join('--' + key.replace('_', '-') for key in flags)
            raise StudyError(f'{named} set the resources of a submitit job: they need '
                             '--executor local or slurm')
        return {}
    resources = dict(study.cluster, **flags)
    if executor == 'slurm' and shutil.which('srun') is None:
        raise StudyError('--executor slurm: no srun on this machine; submit from a machine of '
                         'the SLURM cluster (or use --executor local, or plan for another '
                         'scheduler)')
    if executor == 'slurm' and 'time_min' not in resources:
        raise StudyError('--executor slurm needs a time limit per run: --time-min MINUTES, or '
                         "cluster=dict(time_min=...) in the study config (submitit's default, "
                         '5 minutes, would stop the runs)')
    resources.setdefault('time_min', LOCAL_TIME_MIN)
    return resources


def _unfinished_runs(study: Study, only: Sequence[tuple[str, int]] | None, overwrite: bool,
                     report: bool) -> tuple[list[tuple[str, int]], int]:
    """The runs to do (trainers first) and how many were asked for; refuses unknown runs,
    unwritable folders and finished runs of other settings before any work."""
    runs = list(only) if only else study.runs()
    for v, s in runs:
        if v not in study.variants or s not in study.seeds:
            raise StudyError(f'{v}:{s} is not a run of this study (variants '
                             f'{", ".join(study.variants)}; seeds {list(study.seeds)})')
    check_writable(study.work_dir, 'study folder', error=StudyError)
    if report:
        check_writable(study.report_dir, 'report folder', error=StudyError)
    prepare_data(study)
    finished = {r for r in runs if (study.run_dir(*r) / RUN_RECORD).is_file()}
    stale = {} if overwrite else {r: changed_settings(study, *r) for r in runs if r in finished}
    stale = {r: changed for r, changed in stale.items() if changed}
    if stale:
        listed = '; '.join(f'{v} seed {s} (changed: {", ".join(c)})' for (v, s), c in stale.items())
        only = ' '.join(f'{v}:{s}' for v, s in stale)
        raise StudyError(f'finished runs in {study.work_dir} made with other settings: {listed}. '
                         f'Redo them with --overwrite --only {only}, or use another work folder')
    todo = [r for r in runs if overwrite or r not in finished]
    for r in sorted(finished - set(todo)):
        _rebuild_records(study, *r)
    todo.sort(key=lambda r: study.variants[r[0]].train_as is not None)  # trainers first
    return todo, len(runs)


def run_study(study: Study, jobs: int | None = None,
              only: Sequence[tuple[str, int]] | None = None, overwrite: bool = False,
              threads: int | None = None, report: bool = True, executor: str = 'pool',
              resources: Mapping | None = None) -> list[str]:
    """Run the study's unfinished runs; return the failures, one line each.

    ``executor``: ``'pool'``, ``jobs`` processes here (default 1); ``'local'`` / ``'slurm'``,
    one submitit job per run, ``jobs`` at a time (default 1 here, all at once on SLURM),
    with ``resources`` (``gpus``, ``cpus``, ``time_min``, ``mem_gb``, ``partition``) over
    the study's ``cluster``; job files in ``<work_dir>/jobs/``. Every route runs
    :func:`_run_logged`. Each run uses ``threads`` torch threads (default: ``cpus``, else
    the cores divided by ``jobs`` here, the job's CPUs on SLURM). With ``report`` (the
    report follows), the report folder is checked to be writable first.
    """
    resources = _run_resources(study, executor, jobs, threads, resources)
    todo, total = _unfinished_runs(study, only, overwrite, report)
    jobs = min(jobs or (len(todo) if executor == 'slurm' else 1), max(1, len(todo)))
    route = 'processes' if executor == 'pool' else f'{executor} submitit jobs'
    print(f'study {study.name}: {total - len(todo)}/{total} runs finished, {len(todo)} to run, '
          f'{jobs} at a time ({route}); logs in {study.work_dir}/runs/<variant>/seed_<seed>/'
          'log.txt', flush=True)
    if not todo:
        return []
    threads = threads or resources.get('cpus') or (
        None if executor == 'slurm' else max(1, (os.cpu_count() or 1) // jobs))
    calls = [(study.config_file, study.work_dir, study.options, v, s, threads, overwrite)
             for v, s in todo]
    outcomes = dispatch(executor, _run_logged, calls, jobs=jobs, resources=resources,
                        folder=study.inside(Path(study.work_dir) / 'jobs'), name=study.name)
    failures = []
    logs = {f'{v} seed {s}': study.run_dir(v, s) / 'log.txt' for v, s in todo}
    with ProgressDisplay(logs, sys.stdout, shown=jobs) as display, contextlib.closing(outcomes):
        for call, result, why in outcomes:
            run = f'{call[3]} seed {call[4]}'
            error = result[3] if result else why
            state = f'failed: {error}' if error else f'done in {result[2]:.0f} s'
            display.note(f'  {run}: {state}', finished=run)
            if error:
                failures.append(f'{run}: {error}')
    return failures


def _rebuild_records(study: Study, variant: str, seed: int) -> bool:
    """Write a finished run's missing ``records.npz`` again from ``sweep/per_image/``;
    False (and a line saying why) when those records are not there either."""
    run_dir = study.run_dir(variant, seed)
    target = run_dir / RECORDS_FILE
    if target.is_file():
        return True
    try:
        records = load_sweep_records(run_dir / 'sweep', study.task, study.distortions,
                                     study.severities, seed)
    except (FileNotFoundError, ValueError) as err:
        print(f'{variant} seed {seed}: no {RECORDS_FILE}, and it cannot be rebuilt ({err}); '
              'the report lists it as missing from the within-run bootstrap', flush=True)
        return False
    save_compact_records(records, study.task, target)
    print(f'{variant} seed {seed}: rebuilt {target} from {run_dir / "sweep" / "per_image"}',
          flush=True)
    return True


def plan_study(study: Study, python: str = 'python',
               tool: str = 'tools/robustness_study.py') -> list[str]:
    """One shell command per run (for any scheduler), each resumable on a shared folder;
    paths and names are quoted for the shell."""
    q = shlex.quote
    cfg = q(study.config_file) if study.config_file else '<study config>'
    options = ''.join(f' {q(f"{k}={_option_text(v)}")}' for k, v in study.options.items())
    options = f' --cfg-options{options}' if options else ''
    return [f'{q(python)} {q(tool)} run {cfg} --work-dir {q(study.work_dir)}{options} '
            f'--only {q(f"{v}:{s}")}' for v, s in study.runs()]


def _option_text(value) -> str:
    """A ``--cfg-options`` value as mmengine's ``DictAction`` reads it back."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_option_text(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def parse_runs(items: Sequence[str] | None) -> list[tuple[str, int]] | None:
    """``['pow1:0', ...]`` (``--only``) as ``[('pow1', 0), ...]``; None for none."""
    if not items:
        return None
    out = []
    for item in items:
        variant, _, seed = item.rpartition(':')
        if not variant or not seed.isdigit():
            raise ValueError(f'--only expects VARIANT:SEED (e.g. pow1:0), got {item!r}')
        out.append((variant, int(seed)))
    return out
