"""Output paths checked before any work starts: a tool that cannot write its results
says so at once instead of after hours of training.

Standard library only (through :mod:`fq_det.utils.io`), so light tools can load it without
the deep-learning stack.
"""
from __future__ import annotations

import os
from pathlib import Path

from fq_det.utils.io import check_writable

__all__ = ['check_output_dir', 'check_output_file', 'check_not_same_file']


def check_output_dir(path: str | os.PathLike, what: str = 'output folder') -> None:
    """Raise unless ``path`` is a folder that exists and is writable or can be created.

    Nothing is created: the nearest existing ancestor must be a folder in which a file
    can be written (tried with a temporary file, so read-only mounts are found too).
    """
    check_writable(path, what, create=False)


def check_output_file(path: str | os.PathLike, what: str = 'output file') -> None:
    """Raise unless the file ``path`` can be written (its folder exists or can be made)."""
    target = Path(path).absolute()
    if target.is_dir():
        raise IsADirectoryError(f'{what} {path} is a folder, not a file')
    check_output_dir(target.parent, what=f'folder of the {what}')


def check_not_same_file(source: str | os.PathLike, out: str | os.PathLike,
                        what: str = 'output') -> None:
    """Raise if writing ``out`` would overwrite the input ``source``."""
    src, dst = Path(source), Path(out)
    same = (src.absolute() == dst.absolute()
            or (src.exists() and dst.exists() and os.path.samefile(src, dst)))
    if same:
        raise ValueError(f'the {what} {out} is the input file {source}: refusing to overwrite '
                         'it; choose another output path')
