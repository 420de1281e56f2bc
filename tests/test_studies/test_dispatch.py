"""Studies through submitit: one job per (variant, seed) with submitit's local executor end
to end, resumed as with the process pool; the SLURM job script and the refusals."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fq_det.studies import StudyError, load_study, report_study, run_study
from fq_det.studies.dispatch import dispatch, make_executor, submitit_parameters
from helpers import REPO, load_script

CROPS = 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'


def _write_study(path: Path, **overrides) -> Path:
    study = dict(task='classification',
                 data=dict(type='synthvoc', num_train=8, num_test=3, image_size=(96, 72), seed=0),
                 variants=dict(plain=dict(config=str(REPO / CROPS))),
                 reference='plain', seeds=[0, 1], distortions=['jpeg'], severities=[2],
                 train=dict(epochs=1), bootstrap=dict(replicates=20))
    study.update(overrides)
    path.write_text(f'study = {study!r}\n')
    return path


def _tool(argv: list[str]) -> int:
    """The tool's exit status (a user error exits with 2 and one ``error:`` line)."""
    try:
        return load_script('tools/robustness_study.py').main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """An ``srun`` on PATH (what submitit looks for) and an ``sbatch`` that refuses the job,
    as on a cluster where the partition does not exist."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, body in (('srun', 'exit 0'),
                       ('sbatch', 'echo "sbatch: error: invalid partition specified: nope" >&2;'
                                  ' exit 1')):
        (bin_dir / name).write_text(f'#!/bin/sh\n{body}\n')
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    return bin_dir


def _job_folders(work: Path) -> set[str]:
    """The job ids with a folder under ``<work>/jobs/`` (submitit's ``%j`` folder, where it
    writes a submission before the job has an id, left out)."""
    if not (work / 'jobs').is_dir():
        return set()
    return {p.name for p in (work / 'jobs').iterdir() if p.name != '%j'}


@pytest.mark.slow
def test_a_study_runs_through_submitit_local_jobs(tmp_path, capsys) -> None:
    """`run --executor local`: one submitit job per run, results in the study folder; a
    second `run` submits nothing; a finished run of other settings is refused before any
    job is submitted."""
    cfg = _write_study(tmp_path / 'tiny_study.py')
    work = tmp_path / 'work'
    status = _tool(['run', str(cfg), '--work-dir', str(work), '--executor', 'local',
                    '--jobs', '2', '--cpus', '1', '--no-report'])
    assert status == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert '0/2 runs finished, 2 to run, 2 at a time (local submitit jobs)' in out
    assert 'plain seed 0: done in' in out and 'plain seed 1: done in' in out
    jobs = _job_folders(work)
    assert len(jobs) == 2  # one job per run, each with submitit's result and log
    for job in jobs:
        assert (work / 'jobs' / job / f'{job}_0_result.pkl').is_file()
        assert (work / 'jobs' / job / f'{job}_0_log.out').is_file()
    study = load_study(str(cfg), str(work))
    for seed in (0, 1):
        run_dir = study.run_dir('plain', seed)
        assert json.loads((run_dir / 'run.json').read_text())['seed'] == seed
        assert '[stage] train 1 epoch' in (run_dir / 'log.txt').read_text()
    assert report_study(study)['finished'] == 2

    # resumed exactly as with the pool: nothing finished is redone, nothing is submitted
    assert run_study(study, executor='local', report=False) == []
    assert '2/2 runs finished, 0 to run' in capsys.readouterr().out
    assert _job_folders(work) == jobs
    changed = load_study(str(_write_study(tmp_path / 'tiny_study.py', train=dict(epochs=2))),
                         str(work))
    with pytest.raises(StudyError, match=r'made with other settings: plain seed 0 \(changed: '
                                         r'train schedule\)'):
        run_study(changed, executor='local', report=False)
    assert _job_folders(work) == jobs


@pytest.mark.slow
def test_a_job_that_dies_without_result_is_a_failure_named_with_its_log(tmp_path) -> None:
    outcomes = list(dispatch('local', os._exit, [(3, )], jobs=1, folder=tmp_path / 'jobs',
                             resources=dict(time_min=1), name='dies'))
    assert len(outcomes) == 1
    call, result, why = outcomes[0]
    assert call == (3, ) and result is None
    assert why.startswith('job ') and 'ended without a result' in why
    assert str(tmp_path / 'jobs') in why and why.endswith('_0_log.err')


def test_the_slurm_job_script_asks_for_the_resources(tmp_path, fake_slurm) -> None:
    resources = dict(gpus=2, cpus=8, time_min=240, mem_gb=32, partition='gpu')
    executor = make_executor('slurm', tmp_path / 'jobs', submitit_parameters(resources, 'study'))
    script = executor._executor._make_submission_file_text('COMMAND', 'uid')
    for line in ('--gpus-per-node=2', '--cpus-per-task=8', '--time=240', '--mem=32GB',
                 '--partition=gpu', '--job-name=study', '--nodes=1', '--ntasks-per-node=1',
                 f'--output={tmp_path}/jobs/%j/%j_0_log.out'):
        assert f'#SBATCH {line}\n' in script


@pytest.mark.parametrize('args, message', [
    (['--gpus', '1'], '--gpus set the resources of a submitit job: they need --executor local '
                      'or slurm'),
    (['--executor', 'local', '--cpus', '0'], 'run resources: cpus must be an int >= 1, got 0'),
    (['--executor', 'local', '--partition', ' '], 'partition must be a partition name'),
    (['--executor', 'slurm', '--time-min', '60'], '--executor slurm: no srun on this machine'),
    (['--executor', 'local', '--jobs', '0'], '--jobs must be >= 1, got 0'),
])
def test_bad_run_flags_are_refused_before_any_work(tmp_path, capsys, monkeypatch, args,
                                                   message) -> None:
    monkeypatch.setenv('PATH', '/usr/bin:/bin')  # no srun
    cfg = _write_study(tmp_path / 'tiny_study.py')
    assert _tool(['run', str(cfg), '--work-dir', str(tmp_path / 'work'), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err and 'Traceback' not in err
    assert not (tmp_path / 'work').exists()


def test_slurm_needs_a_time_limit(tmp_path, capsys, fake_slurm) -> None:
    cfg = _write_study(tmp_path / 'tiny_study.py')
    assert _tool(['run', str(cfg), '--work-dir', str(tmp_path / 'work'), '--executor', 'slurm',
                  '--gpus', '1']) == 2
    assert '--executor slurm needs a time limit per run: --time-min MINUTES, or ' \
           "cluster=dict(time_min=...)" in capsys.readouterr().err


def test_a_refused_submission_is_one_error_line(tmp_path, capsys, fake_slurm) -> None:
    cfg = _write_study(tmp_path / 'tiny_study.py')
    assert _tool(['run', str(cfg), '--work-dir', str(tmp_path / 'work'), '--executor', 'slurm',
                  '--time-min', '10', '--partition', 'nope']) == 2
    err = capsys.readouterr().err  # sbatch's own stderr, then the one error line
    line = next(ln for ln in err.splitlines() if ln.startswith('error: '))
    assert line.startswith('error: the scheduler refused a job: ') and 'Traceback' not in err
    assert 'sbatch: error: invalid partition specified: nope' in line


@pytest.mark.parametrize('cluster, message', [
    (dict(gpu=1), "cluster: unknown key(s) 'gpu'; valid keys: gpus, cpus, time_min, mem_gb, "
                  'partition'),
    (dict(time_min=0), 'cluster: time_min must be an int >= 1, got 0'),
    (dict(mem_gb=True), 'cluster: mem_gb must be a number > 0 (GB), got True'),
    ('gpu', 'cluster must be dict(gpus=..., cpus=..., time_min=..., mem_gb=..., partition=...)'),
])
def test_bad_cluster_settings_in_the_study_config_are_named(tmp_path, cluster, message) -> None:
    cfg = _write_study(tmp_path / 'tiny_study.py', cluster=cluster)
    with pytest.raises(StudyError) as err:
        load_study(str(cfg), str(tmp_path / 'work'))
    assert message in str(err.value)


def test_the_study_config_sets_the_jobs_resources_and_flags_override_them(tmp_path) -> None:
    from fq_det.studies.running import _run_resources
    cfg = _write_study(tmp_path / 'tiny_study.py',
                       cluster=dict(gpus=1, cpus=4, time_min=120, partition='gpu'))
    study = load_study(str(cfg), str(tmp_path / 'work'))
    assert study.cluster == dict(gpus=1, cpus=4, time_min=120, partition='gpu')
    resources = _run_resources(study, 'local', None, None, dict(cpus=2, gpus=None))
    assert resources == dict(gpus=1, cpus=2, time_min=120, partition='gpu')
    assert _run_resources(study, 'pool', 2, None, None) == {}  # the pool asks for nothing


def test_a_run_being_run_elsewhere_is_refused_not_run_twice(tmp_path) -> None:
    """Every route's per-run function holds the run folder's lock: a second process on the
    same run (a job submitted twice, a second `run`) fails at once, touching nothing."""
    import fcntl

    from fq_det.studies.running import _run_logged
    cfg = _write_study(tmp_path / 'tiny_study.py')
    study = load_study(str(cfg), str(tmp_path / 'work'))
    run_dir = study.run_dir('plain', 0)
    run_dir.mkdir(parents=True)
    with open(run_dir / '.run.lock', 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        variant, seed, _, error = _run_logged(str(cfg), study.work_dir, {}, 'plain', 0, 1, False)
    assert (variant, seed) == ('plain', 0)
    assert 'is being run by another process' in error and str(run_dir / 'log.txt') in error
    assert sorted(p.name for p in run_dir.iterdir()) == ['.run.lock', 'log.txt']


def _process_ended(pid: int) -> bool:
    """No process ``pid``, or only its zombie (ended, not yet reaped)."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] == 'Z'
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_stopping_the_caller_cancels_the_submitted_jobs(tmp_path) -> None:
    """`kill` of a waiting `run` cancels its jobs, as stopping the pool stops its processes."""
    import signal
    import threading
    import time
    folder = tmp_path / 'jobs'
    threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with pytest.raises(SystemExit):
        list(dispatch('local', time.sleep, [(600, )], jobs=1, folder=folder, resources={},
                      name='sleeps'))
    (pid, ) = [int(p.name) for p in folder.iterdir() if p.name != '%j']
    deadline = time.time() + 30
    while not _process_ended(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert _process_ended(pid)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
