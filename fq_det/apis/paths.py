"""Output paths checked before any work starts: a tool that cannot write its results
says so at once instead of after hours of training.

Standard library only, so light tools can load it without the deep-learning stack.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ['check_output_dir', 'check_output_file', 'check_not_same_file']


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: str | os.PathLike, what: str = 'output folder') -> None:
    """Raise unless ``path`` is a folder that exists and is writable or can be created.

    Nothing is created: the nearest existing ancestor must be a folder in which a file
    can be written (tried with a temporary file, so read-only mounts are found too).
    """
    target = Path(path).absolute()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f'{what} {path} is a file, not a folder')
    existing = _nearest_existing(target)
    if not existing.is_dir():
        raise NotADirectoryError(f'cannot create the {what} {path}: {existing} is a file, '
                                 'not a folder')
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise PermissionError(f'cannot write the {what} {path}: {existing} is not writable '
                              f'({err.strerror or err})') from None


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
