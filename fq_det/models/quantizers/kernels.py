"""Fused C kernels for POW-k + ReLU on CPU (float32), built at first use, called via ctypes.

``pow_kernel()`` returns the loaded library or ``None`` (then :mod:`.functional` keeps its
pure-torch path). The C source (``csrc/pow_kernel.c``) needs only the C library, so it
compiles in about a second with the system's C compiler (the one mmcv's build needs too),
tuned for this CPU (``-march=native``); the shared object is cached under
``$FQ_DET_CACHE`` (default ``~/.cache/fq-det/kernels``), keyed by the source, the compiler
and the CPU's feature flags, so a home directory shared by different machines never runs
code built for another CPU. ``FQ_DET_KERNELS=0`` switches the kernels off.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

from mmengine.logging import print_log

SOURCE = Path(__file__).with_name('csrc') / 'pow_kernel.c'
#: the largest k the kernel's per-row accumulators hold (larger k: the torch path)
MAX_SPLITS = 64
# no -ffast-math: NaN/inf semantics stay IEEE; -fno-trapping-math lets the selects vectorise
_FLAGS = ['-O3', '-march=native', '-fopenmp-simd', '-fno-math-errno', '-fno-trapping-math', '-fPIC',
          '-shared']
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_tried = False


def _cpu_flags() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('flags', 'Features')):
                return line
    except OSError:
        pass
    return os.uname().machine


def _build(cc: str) -> Path:
    version = subprocess.run([cc, '--version'], capture_output=True, text=True).stdout
    key = hashlib.sha256('\0'.join([SOURCE.read_text(), cc, version, _cpu_flags(),
                                    ' '.join(_FLAGS)]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get('FQ_DET_CACHE', Path.home() / '.cache' / 'fq-det')) / 'kernels'
    target = cache / f'pow_kernel-{key}.so'
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # atomic: concurrent builders race safely
        out = Path(tmp) / target.name
        subprocess.run([cc, *_FLAGS, str(SOURCE), '-o', str(out), '-lm'], check=True,
                       capture_output=True, text=True)
        os.replace(out, target)
    return target


def pow_kernel() -> Optional[ctypes.CDLL]:
    """The compiled kernels, or ``None`` when switched off or no C compiler works here."""
    global _lib, _tried
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get('FQ_DET_KERNELS', '1') == '0':
            return None
        cc = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc')
        if cc is None:
            print_log('fq_det: no C compiler found; POW runs on the slower pure-torch path',
                      logger='current')
            return None
        try:
            lib = ctypes.CDLL(str(_build(cc)))
        except (OSError, subprocess.CalledProcessError) as err:
            detail = getattr(err, 'stderr', '') or err
            print_log(f'fq_det: building the POW kernels failed ({detail}); using the '
                      'pure-torch path', logger='current', level=30)
            return None
        f32p, i64, i32, f32 = (ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float)
        lib.pow_relu_forward.argtypes = [f32p, f32p, i64, i64, i64, f32p, i32, f32]
        lib.pow_relu_forward.restype = None
        lib.pow_relu_backward.argtypes = [f32p, f32p, f32p, f32p, i64, i64, i64, f32p, i32, f32,
                                          i32]
        lib.pow_relu_backward.restype = None
        _lib = lib
        return _lib
