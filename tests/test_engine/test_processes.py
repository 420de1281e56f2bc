"""engine/processes.py: worker processes end with the process that started them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER_SCRIPT = '''
import os, time
from fq_det.engine.processes import worker_pool
if __name__ == '__main__':
    with worker_pool(1) as pool:
        worker = pool.submit(os.getpid).result()
        pool.submit(time.sleep, 120)  # the worker is busy, as with a training run
        time.sleep(1)
        print(worker, flush=True)
        time.sleep(120)
'''

needs_proc = pytest.mark.skipif(not Path('/proc/self/status').is_file(),
                                reason='needs Linux /proc')


def _alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped is not)."""
    try:
        status = Path(f'/proc/{pid}/status').read_text()
    except FileNotFoundError:
        return False
    return '\nState:\tZ' not in status


def _wait_gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.time() + seconds
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


@pytest.mark.slow
@needs_proc
def test_workers_die_with_a_killed_parent(tmp_path, repo_root) -> None:
    """SIGKILL the process that runs the pool (no clean-up code runs): its busy worker
    stops too, instead of running on and writing into the run folder."""
    script = tmp_path / 'parent.py'
    script.write_text(WORKER_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env=env)
    worker = None
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(worker)
    finally:
        parent.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


@needs_proc
def test_an_error_in_the_block_stops_busy_workers_at_once() -> None:
    from fq_det.engine.processes import worker_pool
    start = time.time()
    with pytest.raises(RuntimeError, match='refused'):
        with worker_pool(1) as pool:
            worker = pool.submit(os.getpid).result()
            pool.submit(time.sleep, 120)
            raise RuntimeError('the other model was refused')
    assert time.time() - start < 60  # not waited for the 120 s task
    assert _wait_gone(worker)
