"""The live progress of a study's runs, read from their logs: each run's process writes
the study's stage markers (``[stage] train 1200 iterations``, ``reusing ...``), mmengine's
``Iter(train) [i/n] ... eta:`` lines and the sweep's ``pair i/n`` lines to its ``log.txt``;
:class:`ProgressDisplay` turns them into one line that is rewritten in place on a terminal
and printed at each change of stage elsewhere (a log file, CI)."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import IO

from fq_det.studies.run_folder import STAGE

__all__ = ['RunProgress', 'ProgressDisplay']

_LOOP_PROGRESS = re.compile(r'(Iter|Epoch)\((train|val|test)\)\s*(?:\[(\d+)\])?\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'eta: ((?:\d+ days?, )?\d+:\d\d:\d\d)')
_PAIR = re.compile(r'^pair (\d+)/(\d+): (.+)$')


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class RunProgress:
    """What one run's process is doing, read from the lines its log gained since the last
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
    """A live line with the progress of the runs in progress (and how many are done).

    ``runs``: label -> log file. The line shows ``[done/total]`` and each run that has
    begun a stage and is not done (before any has, the first ``shown`` waiting ones). On a
    terminal it is rewritten in place every ``interval`` seconds; otherwise (a log file,
    CI) it is printed when a run changes stage, and at most every ``plain_every`` seconds
    in between.
    """

    def __init__(self, runs: dict[str, Path], stream: IO[str], interval: float = 2.0,
                 plain_every: float = 60.0, shown: int = 2) -> None:
        self.runs = [RunProgress(label, log) for label, log in runs.items()]
        self.stream, self.interval, self.plain_every = stream, interval, plain_every
        self.shown_waiting = shown
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
        run that is done, left out of the live line from now on."""
        with self.lock:
            self._update()  # without a terminal: its last stage, if not printed yet
            for run in self.runs:
                if run.label == finished:
                    run.stage = 'done'
            self.stages = [r.stage for r in self.runs]
            self._clear()
            print(text, file=self.stream, flush=True)

    def refresh(self) -> None:
        with self.lock:
            self._update()

    def line(self) -> str:
        """``  [done/total] <run>: <stage> ... | <run>: ...``"""
        done = sum(r.stage == 'done' for r in self.runs)
        active = [r for r in self.runs if r.stage not in ('starting', 'done')]
        active = active or [r for r in self.runs if r.stage == 'starting'][:self.shown_waiting]
        shown = ' | '.join(r.describe() for r in active) if active else 'all done'
        return f'  [{done}/{len(self.runs)}] {shown}'

    def _update(self) -> None:
        for run in self.runs:
            if run.stage != 'done':
                run.poll()
        line = self.line()
        stages = [r.stage for r in self.runs]
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
