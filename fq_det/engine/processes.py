"""Worker processes that end with the process that started them (the studies' runs): a
stopped or killed parent leaves no run behind writing into its folder; and a process's
output sent to a log file for a while (:func:`output_to`).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

__all__ = ['die_with_parent', 'worker_pool', 'output_to']


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: the kernel sends this process SIGTERM when its parent dies
    (Linux ``prctl(PR_SET_PDEATHSIG)``; strictly, when the parent's thread that started the
    worker ends: :func:`worker_pool` starts them from the caller's thread); elsewhere a
    no-op."""
    if not sys.platform.startswith('linux'):
        return
    import ctypes
    import signal
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A ``spawn`` process pool of ``jobs`` workers that die with this process.

    On Ctrl-C or an error inside the ``with`` block the workers are terminated at once
    (their runs resume from their last checkpoint) instead of being waited for.
    """
    others = {child.pid for child in mp.active_children()}
    pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context('spawn'),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in mp.active_children():
            if child.pid not in others:  # this pool's workers only
                child.terminate()
        raise
    pool.shutdown()


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """This process's stdout and stderr appended to ``log`` for the block, restored after:
    at the descriptor level (progress bars keep the stdout they were created with, C code
    writes to fd 1) and as ``sys.stdout`` / ``sys.stderr`` (loggers created in the block
    write to what they find there, also when it is not the descriptor, as under pytest)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved, streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
    with open(log, 'a', buffering=1) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        sys.stdout = sys.stderr = f
        try:
            yield
        finally:
            f.flush()
            sys.stdout, sys.stderr = streams
            for fd, copy_of in zip((1, 2), saved):
                os.dup2(copy_of, fd)
                os.close(copy_of)
