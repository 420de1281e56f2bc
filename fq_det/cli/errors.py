"""How the command-line tools report bad input: ``error: <message>`` on stderr, exit status 2.

Every tool's ``main`` is wrapped in :func:`report_user_errors`. An exception counts as a
*user error* (something the user can fix: a path, a value, a file) when it is one of

* ``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``, ``PermissionError``
  (a path that is missing, of the wrong kind or not writable);
* ``ValueError`` (a value out of range, an unknown choice, a checkpoint of another model,
  a file that is not a checkpoint);
* ``pickle.UnpicklingError`` (a file that torch's ``weights_only`` loader refuses);
* ``KeyError`` whose message is a sentence, such as mmengine's
  ``"X is not in the mmdet::model registry ..."``.

Anything else (``TypeError``, ``AttributeError``, ``IndexError``, ``RuntimeError``, a
``KeyError`` of a bare key, ...) is a bug and keeps its traceback. ``FQ_DET_DEBUG=1`` in the
environment shows the traceback of user errors too.

This module needs only the standard library, so light tools can load it without the
deep-learning stack.
"""
from __future__ import annotations

import functools
import os
import pickle
import re
import sys
from typing import Callable, TypeVar

__all__ = ['ToolExit', 'USER_ERROR_TYPES', 'is_user_error', 'report_user_errors',
           'user_error_message']

#: Exception types reported as one ``error:`` line (``KeyError`` only with a sentence).
USER_ERROR_TYPES = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                    ValueError, pickle.UnpicklingError, KeyError)

EXIT_USER_ERROR = 2  # as argparse exits on a bad command line

T = TypeVar('T')


class ToolExit(SystemExit):
    """Exit with status 2 after a user error; ``str()`` is the ``error:`` line."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USER_ERROR)
        self.message = message

    def __str__(self) -> str:
        return f'error: {self.message}'


_NOT_IN_REGISTRY = re.compile(r'^(?P<name>[\w.]+) is not in the (?P<scope>\w+)::(?P<registry>\w+) '
                              r'registry')


def registry_hint(message: str) -> str:
    """For mmengine's ``"X is not in the <scope>::<registry> registry"``: the registered
    names closest to ``X`` (over every scope), e.g. ``ResNetPOW`` for ``ResNetPWO``."""
    match = _NOT_IN_REGISTRY.match(message)
    if not match or 'mmengine.registry' not in sys.modules:
        return ''
    import difflib

    import mmengine.registry as registries
    roots = [r for r in vars(registries).values()
             if isinstance(r, registries.Registry) and r.name == match['registry']]
    names, todo = set(), list(roots)
    while todo:
        reg = todo.pop()
        names.update(reg.module_dict)
        todo.extend(reg.children.values())
    wanted = match['name'].split('.')[-1]
    close = difflib.get_close_matches(wanted, sorted(names), n=5, cutoff=0.6)
    return f' (did you mean {" or ".join(map(repr, close))}?)' if close else ''


def user_error_message(err: BaseException) -> str:
    """The text of ``err`` without the quotes ``KeyError`` adds to its message, with the
    closest registered names for an unknown registry type."""
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        return err.args[0] + registry_hint(err.args[0])
    return str(err)


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` reports bad input (see the module docstring) rather than a bug."""
    if not isinstance(err, USER_ERROR_TYPES):
        return False
    message = user_error_message(err).strip()
    if isinstance(err, KeyError):
        return ' ' in message  # a sentence, not a bare key looked up by buggy code
    return bool(message)


def report_user_errors(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a tool's ``main``: a user error prints ``error: <message>`` and exits with 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> T:
        try:
            return main(*args, **kwargs)
        except Exception as err:
            if not is_user_error(err) or os.environ.get('FQ_DET_DEBUG', '') not in ('', '0'):
                raise
            message = user_error_message(err)
            sys.stdout.flush()
            print(f'error: {message}', file=sys.stderr, flush=True)
            raise ToolExit(message) from None

    return wrapper
