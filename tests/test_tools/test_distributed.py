"""tools/dist_train.sh and tools/dist_test.sh: two CPU processes (torchrun, gloo)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    return subprocess.run(['bash', str(REPO_ROOT / 'tools' / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_process_train_and_test(synthetic_voc_root: Path, tmp_path: Path) -> None:
    work = tmp_path / 'work'
    proc = _launch('dist_train.sh', [str(CONFIG), '2', '--work-dir', str(work), '--data-root',
                                     str(synthetic_voc_root), '--cfg-options', 'train_cfg.max_iters=2',
                                     'train_cfg.val_interval=2', 'train_dataloader.batch_size=1',
                                     'default_hooks.logger.interval=1'], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = next(work.glob('*/*.log')).read_text()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert "backend='gloo'" in log or '"gloo"' in log or "'gloo'" in log
    assert (work / 'iter_2.pth').is_file()

    proc = _launch('dist_test.sh', [str(CONFIG), str(work / 'iter_2.pth'), '2', '--work-dir',
                                    str(tmp_path / 'test'), '--data-root', str(synthetic_voc_root)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'pascal_voc/mAP' in proc.stdout + proc.stderr


def test_usage_message() -> None:
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_train.sh')], capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage:' in proc.stderr
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools/dist_test.sh'), 'a', 'b'], capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage:' in proc.stderr


def _gloo_threads() -> list[str]:
    names = [(task / 'comm').read_text().strip() for task in Path('/proc/self/task').iterdir()]
    return [name for name in names if 'gloo' in name]


@pytest.mark.skipif(not Path('/proc/self/task').is_dir(), reason='needs Linux /proc')
def test_end_process_group_stops_gloo_threads(tmp_path: Path) -> None:
    """The tools end with ``end_process_group``: gloo's threads must stop while Python still
    runs, even though a Runner's reference cycle holds the group (else a finished rank can
    abort at interpreter exit with 'terminate called without an active exception')."""
    import torch.distributed as dist

    from fq_det.cli import end_process_group

    end_process_group()  # no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    try:
        holder: list = [dist.group.WORLD]
        holder.append(holder)  # a cycle, as Runner -> DDP model -> group
        del holder
        deadline = time.monotonic() + 10  # gloo starts its threads asynchronously
        while not _gloo_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gloo_threads()
        end_process_group()
        assert not dist.is_initialized()
        assert not _gloo_threads()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
