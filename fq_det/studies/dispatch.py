"""Where a study's runs execute: a process pool here, or one job per run through
`submitit <https://github.com/facebookincubator/submitit>`_ (SLURM on a cluster, its local
executor on this machine).

Every route calls the same per-run function with the same arguments, once per
``(variant, seed)``, and yields each outcome as the run ends; what a run does, where it
writes (its run folder) and how it resumes do not depend on the route.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from fq_det.studies.errors import StudyError

__all__ = ['EXECUTORS', 'RESOURCE_KEYS', 'check_resources', 'dispatch', 'make_executor',
           'submitit_parameters']

#: ``pool``: processes of this machine (``--jobs`` at a time); ``local`` / ``slurm``: one
#: submitit job per run, on this machine or submitted to SLURM.
EXECUTORS = ('pool', 'local', 'slurm')
#: Per-run resources (the study's ``cluster`` dict, or ``run``'s flags) -> submitit's names.
RESOURCE_KEYS = {'gpus': 'gpus_per_node', 'cpus': 'cpus_per_task', 'time_min': 'timeout_min',
                 'mem_gb': 'mem_gb', 'partition': 'slurm_partition'}
#: Seconds between two looks at the jobs' states (sacct is asked at most this often).
POLL_S = {'local': 0.5, 'slurm': 15.0}

#: A call of the per-run function (its positional arguments) and what it ended with:
#: ``(call, result, None)``, or ``(call, None, why)`` for a job that ended without result.
Outcome = tuple[tuple, Any, 'str | None']


def _valid(key: str, value: Any) -> bool:
    if key == 'partition':
        return isinstance(value, str) and bool(value.strip())
    if key == 'mem_gb':
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    low = 0 if key == 'gpus' else 1
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_resources(given: Mapping | None, where: str) -> dict:
    """``given`` (``dict(gpus=1, cpus=8, time_min=240, mem_gb=32, partition='gpu')``, any
    subset; ``None`` values left out) checked; a StudyError names a bad key or value."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise StudyError(f'{where} must be dict({", ".join(f"{k}=..." for k in RESOURCE_KEYS)}),'
                         f' got {given!r}')
    unknown = sorted(set(given) - set(RESOURCE_KEYS))
    if unknown:
        raise StudyError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; valid keys: '
                         f'{", ".join(RESOURCE_KEYS)}')
    checked = {k: v for k, v in given.items() if v is not None}
    for key, value in checked.items():
        if not _valid(key, value):
            what = {'gpus': 'an int >= 0', 'mem_gb': 'a number > 0 (GB)',
                    'partition': 'a partition name'}.get(key, 'an int >= 1')
            raise StudyError(f'{where}: {key} must be {what}, got {value!r}')
    return checked


def submitit_parameters(resources: Mapping, name: str) -> dict:
    """The arguments of submitit's ``AutoExecutor.update_parameters`` for one run per job
    (one node, one task); ``slurm_``-prefixed ones are ignored by the local executor."""
    params = dict(name=name, nodes=1, tasks_per_node=1)
    params.update({RESOURCE_KEYS[k]: v for k, v in resources.items()})
    return params


def dispatch(executor: str, fn: Callable, calls: Sequence[tuple], *, jobs: int, folder: Path,
             resources: Mapping, name: str) -> Iterator[Outcome]:
    """``fn(*call)`` for every call, at most ``jobs`` at a time; yields each outcome as
    its run ends. ``folder`` holds submitit's job files (pickles, ``<job id>_0_log.out``).

    Stopping the caller (Ctrl-C, an error) stops the runs it started: the pool's processes
    are terminated, the submitted jobs cancelled; each resumes at the next ``run``.
    """
    if executor not in EXECUTORS:
        raise StudyError(f'unknown executor {executor!r}; choose one of {", ".join(EXECUTORS)}')
    if executor == 'pool':
        yield from _pooled(fn, calls, jobs)
    else:
        yield from _submitted(executor, fn, calls, jobs, folder,
                              submitit_parameters(resources, name))


def _pooled(fn: Callable, calls: Sequence[tuple], jobs: int) -> Iterator[Outcome]:
    from concurrent.futures import as_completed

    from fq_det.engine.processes import worker_pool
    with worker_pool(jobs) as pool:
        futures = {pool.submit(fn, *call): call for call in calls}
        for fut in as_completed(futures):
            yield futures[fut], fut.result(), None


def make_executor(cluster: str, folder: Path, params: Mapping):
    """submitit's ``AutoExecutor`` for ``cluster`` (``'local'`` or ``'slurm'``), its job
    files in ``folder/<job id>/``, set up with ``params`` (:func:`submitit_parameters`)."""
    try:
        import submitit
    except ImportError as err:
        raise StudyError(f'--executor {cluster} needs submitit (requirements/runtime.txt: '
                         f'pip install submitit): {err}') from err
    try:
        executor = submitit.AutoExecutor(folder=str(folder / '%j'), cluster=cluster)
    except RuntimeError as err:  # slurm: no srun on this machine
        raise StudyError(f'--executor {cluster}: {err} (submit from a machine of the cluster, '
                         'or use --executor local or plan)') from err
    executor.update_parameters(**params)
    return executor


def _submitted(cluster: str, fn: Callable, calls: Sequence[tuple], jobs: int, folder: Path,
               params: dict) -> Iterator[Outcome]:
    """One submitit job per call, ``jobs`` submitted at a time, topped up as they end."""
    executor = make_executor(cluster, folder, params)
    waiting, running = list(calls), []
    try:
        with _terminate_raises():
            yield from _top_up(executor, fn, waiting, running, jobs, folder, POLL_S[cluster])
    except BaseException:
        _cancel([job for job, _ in running], cluster)
        raise


#: Seconds a cancelled local job gets to end on SIGINT before it is killed.
LOCAL_CANCEL_GRACE_S = 5.0


def _cancel(jobs: list, cluster: str) -> None:
    """Cancel ``jobs``. submitit cancels a local job with SIGINT, which a job can ignore
    (a process started with SIGINT ignored) or outlive (seen under load: still running 30 s
    later): a local job still running after :data:`LOCAL_CANCEL_GRACE_S` is killed."""
    for job in jobs:
        job.cancel(check=False)
    if cluster != 'local':
        return
    deadline = time.time() + LOCAL_CANCEL_GRACE_S
    for job in jobs:
        process = getattr(job, '_process', None)
        if process is None:
            continue
        try:
            process.wait(timeout=max(0.0, deadline - time.time()))
        except Exception:  # subprocess.TimeoutExpired: still running
            process.kill()
            process.wait()


def _top_up(executor, fn: Callable, waiting: list, running: list, jobs: int, folder: Path,
            poll_s: float) -> Iterator[Outcome]:
    """Submit from ``waiting`` while fewer than ``jobs`` are in ``running``; yield each
    ended job's outcome (``running`` always lists the jobs not yet ended)."""
    while waiting or running:
        while waiting and len(running) < jobs:
            call = waiting.pop(0)
            running.append((_submit(executor, fn, call, folder), call))
        ended = [(job, call) for job, call in running if job.done()]
        if not ended:
            time.sleep(poll_s)
        for job, call in ended:
            running.remove((job, call))
            yield (call, *_job_outcome(job))


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM (``kill``) ends this process through an exception, as Ctrl-C does, so the
    submitted jobs are cancelled on the way out (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _submit(executor, fn: Callable, call: tuple, folder: Path):
    """``executor.submit(fn, *call)``; a refused submission (``sbatch`` failed: an unknown
    partition, a limit of the account) is a StudyError with the scheduler's words."""
    from submitit.core.utils import FailedSubmissionError, UncompletedJobError
    try:
        return executor.submit(fn, *call)
    except (FailedSubmissionError, UncompletedJobError) as err:  # the latter: sbatch's status
        said = '; '.join(line.strip() for line in str(err).splitlines() if line.strip())
        raise StudyError(f'the scheduler refused a job: {said} (job files in {folder}); the '
                         'jobs submitted before it are cancelled') from err


def _job_outcome(job) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, why)`` for a job that ended without one (time limit,
    out of memory, cancelled, node failure)."""
    from submitit.core.utils import UncompletedJobError
    try:
        return job.result(), None
    except UncompletedJobError as err:
        lines = [ln for ln in str(err).splitlines() if ln.strip()]
        reason = lines[-1].strip() if lines else type(err).__name__
        return None, (f'job {job.job_id} ended without a result ({job.state}: {reason}); '
                      f'job log: {job.paths.stderr}')
