"""Fixes for the stack as it runs: torch 2.14 + mmengine 0.10.7 + mmdet 3.3.0 + numpy 2.

Only stack fixes live here; import side effects are applied once, when ``fq_det``
is imported (import it before mmengine to also quiet mmengine's import-time
``pkg_resources`` deprecation warning).

Checkpoints under ``torch.load(weights_only=True)``
    torch >= 2.6 loads with ``weights_only=True`` by default. mmengine 0.10.7 writes
    its message hub into every checkpoint: ``HistoryBuffer`` objects holding numpy
    arrays, and (through ``HistoryBuffer.__getstate__``) references to the class's
    statistics methods, which pickle as ``builtins.getattr(HistoryBuffer, 'min')``.
    Without a fix, ``Runner(resume=True)`` and ``load_checkpoint`` (so every
    ``tools/test.py`` call) fail with ``UnpicklingError: Weights only load failed``.

    The fix keeps torch's protection on: it allow-lists the few plain-data types that
    mmengine writes (``HistoryBuffer`` and numpy arrays, dtypes and scalars) and makes
    ``HistoryBuffer`` stop pickling its method table (the table is class-level and
    ``__setstate__`` restores the defaults anyway), so no ``getattr`` is needed.
    ``builtins.getattr`` itself is deliberately *not* allow-listed: with it a crafted
    checkpoint could reach arbitrary code. Checkpoints written by an unpatched
    mmengine still contain that reference; they fail with torch's own message, and
    only a user who trusts the file should load it with ``weights_only=False``.
"""
from __future__ import annotations

import warnings

# mmengine 0.10.7 imports pkg_resources (for 'mmdet::' config paths), which setuptools 80
# deprecates with a warning on every start of every tool; it says nothing to a user.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402


def _numpy_safe_globals() -> list:
    """numpy objects that appear in mmengine checkpoints (arrays, dtypes, scalars)."""
    multiarray = getattr(np, '_core', None) or np.core
    found = [np.ndarray, np.dtype, multiarray.multiarray._reconstruct, multiarray.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes through their concrete classes (numpy.dtypes.Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """Instance state without the class-level statistics-method table.

    mmengine's version adds ``statistics_methods`` (functions, pickled through
    ``getattr``); ``HistoryBuffer.__setstate__`` restores the defaults by itself.
    """
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def register_checkpoint_safe_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read the checkpoints mmengine writes."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals([HistoryBuffer, *_numpy_safe_globals()])


register_checkpoint_safe_globals()
