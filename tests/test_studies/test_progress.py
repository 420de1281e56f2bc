"""The live progress line of a study's runs (fq_det.studies.progress), read from their logs."""
from __future__ import annotations

import io
from pathlib import Path

from fq_det.studies import progress as progress_module
from fq_det.studies.progress import ProgressDisplay, RunProgress
from fq_det.studies.run_folder import STAGE


def test_progress_is_read_from_the_run_log(tmp_path: Path, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, 'time', lambda: clock[0])
    log = tmp_path / 'log.txt'
    log.write_text('old run\n')
    progress = RunProgress('pow seed 0', log)
    assert progress.describe() == 'pow seed 0: starting'
    with open(log, 'a') as f:
        f.write(f'{STAGE} pretrain 6 epochs\n'
                '12/01 10:00:00 - mmengine - INFO - Epoch(train) [2][ 20/175]  lr: 1e-3  '
                'eta: 0:01:40  time: 0.1\n')
    progress.poll()
    assert progress.describe() == 'pow seed 0: pretrain (6 epochs) epoch 2 20/175, eta 0:01:40'
    with open(log, 'a') as f:
        f.write(f'{STAGE} train 1200 iterations\n'
                'Iter(train) [ 340/1200]  base_lr: 1e-3 eta: 1 day, 0:04:10  time: 0.3\n'
                'Iter(val) [1/30]  eta: 0:00:03\n')
    progress.poll()
    assert progress.describe() == ('pow seed 0: train (1200 iterations) 340/1200, '
                                   'eta 1 day, 0:04:10')
    with open(log, 'a') as f:
        f.write(f'{STAGE} sweep 36 pairs\npair 1/36: clean\n[>>  ] 3/60\r[>>> ] 4/60\n')
    progress.poll()
    clock[0] += 10  # the first pair took 10 s
    with open(log, 'a') as f:
        f.write('pair 2/36: jpeg 1\n')
    progress.poll()
    assert progress.describe() == 'pow seed 0: sweep (36 pairs) pair 2/36 jpeg 1, eta 0:05:50'


def test_without_a_terminal_stage_changes_are_printed(tmp_path: Path) -> None:
    logs = {'plain seed 0': tmp_path / 'a.log', 'pow seed 0': tmp_path / 'b.log',
            'pow seed 1': tmp_path / 'c.log'}
    stream = io.StringIO()
    display = ProgressDisplay(logs, stream, interval=3600, shown=2)
    display.refresh()
    display.refresh()  # nothing changed: nothing printed
    logs['pow seed 0'].write_text(f'{STAGE} train 3 iterations\nIter(train) [1/3]  eta: 0:00:02\n')
    display.refresh()
    with open(logs['pow seed 0'], 'a') as f:
        f.write(f'{STAGE} sweep 2 pairs\npair 1/2: clean\n')
    display.note('  pow seed 0: done in 5 s', finished='pow seed 0')  # the stage it reached first
    display.refresh()  # nothing changed since the note: nothing printed
    assert stream.getvalue().splitlines() == [
        '  [0/3] plain seed 0: starting | pow seed 0: starting',  # before any run has begun
        '  [0/3] pow seed 0: train (3 iterations) 1/3, eta 0:00:02',  # runs in progress only
        '  [0/3] pow seed 0: sweep (2 pairs) pair 1/2 clean',
        '  pow seed 0: done in 5 s']
    assert display.line() == '  [1/3] plain seed 0: starting | pow seed 1: starting'
    for label in ('plain seed 0', 'pow seed 1'):
        display.note(f'  {label}: done in 1 s', finished=label)
    assert display.line() == '  [3/3] all done'


def test_on_a_terminal_one_line_is_rewritten(tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log = tmp_path / 'log.txt'
    stream = Terminal()
    display = ProgressDisplay({'pow seed 0': log}, stream, interval=3600)
    log.write_text(f'{STAGE} train 9 iterations\nIter(train) [3/9]  eta: 0:00:06\n')
    display.refresh()
    display.note('  plain seed 0: done in 5 s')  # a permanent line: the live line is cleared first
    with open(log, 'a') as f:
        f.write('Iter(train) [6/9]  eta: 0:00:03\n')
    display.refresh()
    live = '  [0/1] pow seed 0: train (9 iterations) 3/9, eta 0:00:06'
    assert stream.getvalue() == ('\r' + live + '\r' + ' ' * len(live) + '\r'
                                 + '  plain seed 0: done in 5 s\n'
                                 + '\r  [0/1] pow seed 0: train (9 iterations) 6/9, eta 0:00:03')
