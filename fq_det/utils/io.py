"""One home for the file jobs that results depend on.

* writes are atomic: a unique temporary file in the target's folder, ``fsync``, then
  ``os.replace``, with the mode a plain ``open(..., 'w')`` would give (the user's umask),
  so a killed process leaves the old file or the new one, never half of one;
* locks are exclusive ``fcntl.flock`` locks on a lock file (blocking, or refused at once);
* digests are sha256 over the whole file, read in 1 MiB chunks;
* JSON is read with the file named in every error;
* mmengine's ``vis_data/scalars.json`` logs and checkpoint state dicts are read one way.

Standard library and numpy only at import time, so light tools can load it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

__all__ = ['umask_mode', 'atomic_write_bytes', 'atomic_write_text', 'atomic_write_json',
           'atomic_save_npz', 'read_json', 'file_lock', 'sha256_file', 'check_writable',
           'read_scalars', 'unwrap_state_dict']

PathLike = str | os.PathLike


def umask_mode() -> int:
    """The mode a plain ``open(..., 'w')`` gives a new file: ``0o666`` less the umask
    (``mkstemp``'s own 0600 would keep a shared cluster folder's files from the group)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (its folder is created if needed)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    os.chmod(tmp, umask_mode())
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_write_json(path: PathLike, obj: Any, *, indent: int | None = 2,
                      default: Callable | None = None, sort_keys: bool = False,
                      trailing_newline: bool = False) -> None:
    """``json.dumps(obj, indent=..., default=..., sort_keys=...)`` written atomically."""
    text = json.dumps(obj, indent=indent, default=default, sort_keys=sort_keys)
    atomic_write_text(path, text + ('\n' if trailing_newline else ''))


def atomic_save_npz(path: PathLike, arrays: Mapping[str, Any], compressed: bool = False) -> None:
    """``numpy.savez`` (or ``savez_compressed``) of ``arrays`` written atomically."""
    import numpy as np
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path: PathLike, error: type[Exception] = ValueError,
              remedy: str = 'delete it to start afresh', kind: type | None = dict) -> Any:
    """The JSON value in ``path``; ``None`` if there is no file.

    A file that is not valid JSON, or (with ``kind``) holds another type, raises ``error``
    naming the file and ``remedy``.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_bytes().decode('utf-8'))
    except (ValueError, UnicodeDecodeError) as err:
        raise error(f'{path} is not valid JSON ({err}); it was cut short or edited by hand: '
                    f'{remedy}') from None
    if kind is not None and not isinstance(obj, kind):
        raise error(f'{path} holds a JSON {type(obj).__name__}, not the {kind.__name__} '
                    f'that was written there: {remedy}')
    return obj


@contextlib.contextmanager
def file_lock(path: PathLike, blocking: bool = True,
              busy: Callable[[Path], Exception] | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block.

    With ``blocking=False`` a lock held by another process raises ``busy(path)``
    (``BlockingIOError`` without it) instead of waiting.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, umask_mode())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            if busy is None:
                raise
            raise busy(path) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sha256_file(path: PathLike, length: int | None = None) -> str:
    """sha256 hex digest of the whole file (the first ``length`` hex digits if given)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:length] if length else h.hexdigest()


def check_writable(folder: PathLike, what: str = 'output folder', create: bool = True,
                   error: Callable[[str], Exception] = PermissionError) -> None:
    """Raise ``error`` unless a file can be written in ``folder``.

    With ``create`` the folder is made if needed; without it nothing is created and the
    nearest existing ancestor must be a writable folder. A path that is a file is refused.
    """
    target = Path(folder).absolute()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f'the {what} {folder} is a file, not a folder')
    probe_dir = target
    try:
        if create:
            target.mkdir(parents=True, exist_ok=True)
        else:
            while not probe_dir.exists() and probe_dir != probe_dir.parent:
                probe_dir = probe_dir.parent
            if not probe_dir.is_dir():
                raise NotADirectoryError(f'cannot create the {what} {folder}: {probe_dir} is a '
                                         'file, not a folder')
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as err:
        if isinstance(err, NotADirectoryError) and str(err).startswith('cannot create'):
            raise
        raise error(f'cannot write to the {what} {folder}: {probe_dir} is not writable '
                    f'({err.strerror or err})') from None


def read_scalars(work_dir: PathLike, recursive: bool = False) -> Iterator[dict]:
    """The records of mmengine's ``<timestamp>/vis_data/scalars.json`` logs under
    ``work_dir`` (every resumed part, oldest first); lines that are not JSON are skipped."""
    pattern = '**/vis_data/scalars.json' if recursive else '*/vis_data/scalars.json'
    for f in sorted(Path(work_dir).glob(pattern)):
        for line in f.read_text().splitlines():
            if line.strip():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        yield record


def unwrap_state_dict(checkpoint: Mapping, keys: tuple[str, ...] = ('state_dict', 'model'),
                      strip_module: bool = True) -> dict:
    """The weights of a loaded checkpoint: its ``state_dict`` (or ``model``) entry, or the
    mapping itself, with the ``module.`` prefix of wrapped models removed (as mmengine's
    ``load_checkpoint`` does)."""
    state = checkpoint
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            state = checkpoint[key]
            break
    if not strip_module:
        return dict(state)
    return {(k[len('module.'):] if isinstance(k, str) and k.startswith('module.') else k): v
            for k, v in state.items()}
