"""Exporting a study's finished runs: the small result files and the reports, with paths
written relative to a clone, for committing and for resuming in another clone."""
from __future__ import annotations

import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Mapping

from fq_det.studies.config import REPO_ROOT, Study
from fq_det.studies.run_folder import RECORDS_FILE, RUN_RECORD

__all__ = ['EXPORTED', 'export_results', 'portable_paths']

#: What :func:`export_results` copies: the finished runs' small files and the reports.
EXPORTED = (RUN_RECORD, RECORDS_FILE, 'sweep/results.json', 'sweep/results.md',
            'pretrain/done.json', 'train/done.json')


def export_results(study: Study, dest: str | Path) -> list[Path]:
    """Copy the finished runs' small result files and the reports to ``dest`` (same layout).

    What is copied is what :func:`report_study` reads and what tells :func:`run_study`
    that a run is finished, so a copy in another clone's study folder resumes from there.
    Absolute paths in the copied text files are written relative to where they point:
    ``configs/...`` for files in the repository, the study's default folder
    (``work_dirs/studies/<runs>/...``) for its work folder, so the copies name nothing
    outside a clone.
    """
    dest, src = Path(dest), Path(study.work_dir)
    home = (study.default_work_dir or osp.join('work_dirs', 'studies', src.name)) + os.sep
    prefixes = {str(src) + os.sep: home, str(src.resolve()) + os.sep: home,
                str(REPO_ROOT) + os.sep: ''}
    files = []
    for variant, seed in study.runs():
        run_dir = study.run_dir(variant, seed)
        if (run_dir / RUN_RECORD).is_file():
            files += [run_dir / rel for rel in EXPORTED if (run_dir / rel).is_file()]
    if study.report_dir.is_dir():
        files += [f for f in study.report_dir.iterdir() if f.is_file()]
    copied = []
    for f in files:
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix in ('.json', '.md'):
            target.write_text(portable_paths(f.read_text(), prefixes))
        else:
            shutil.copy2(f, target)
        copied.append(target)
    return copied


def portable_paths(text: str, prefixes: Mapping[str, str]) -> str:
    """``text`` with every absolute path prefix in ``prefixes`` replaced by its value."""
    for prefix in sorted(prefixes, key=len, reverse=True):
        text = text.replace(prefix, prefixes[prefix])
    return text
