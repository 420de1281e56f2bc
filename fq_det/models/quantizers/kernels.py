"""Compiled C kernels for POW-k fused with a ReLU on CPU (float32): build, cache, dispatch.

:func:`pow_kernel` returns the loaded library or ``None`` (then :mod:`.functional` runs its
pure-torch path). The C source (``csrc/pow_kernel.c``) needs only the C library, so it
compiles in about a second with the system's C compiler (the one mmcv's build needs too),
tuned for this CPU (``-march=native``). ``FQ_DET_KERNELS=0`` switches the kernels off.

The cache, ``$FQ_DET_CACHE/kernels`` (default ``~/.cache/fq-det/kernels``), is keyed by the
source, the compiler and its version, the CPU's feature flags and the compiler flags, so a
home directory shared by different machines never runs code built for another CPU. For a
key ``KEY`` it holds a record ``pow_kernel-KEY.json`` naming the library
``pow_kernel-KEY-<sha256 prefix>.so`` with its size and sha256. A cached library is loaded
only if its size and sha256 match the record and it then reports this module's
``ABI_VERSION``; on any doubt (no record, a truncated or changed file, a foreign library)
it is rebuilt in a fresh temporary directory, loaded from there and moved into place,
then the record is replaced. Every file is written under a temporary name and renamed,
so parallel first uses never see a half-written file. When no library can be verified or
built, one warning names the file and the reason, and POW runs on the torch path.

:func:`kernel_for`, :func:`forward` and :func:`backward` are the dispatch used by
:class:`.functional.PowQuantFunction`: rows of the ``(N*C, H*W)`` view are split over
``torch.get_num_threads()`` threads of a pool (ctypes releases the GIL).
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

SOURCE = Path(__file__).with_name('csrc') / 'pow_kernel.c'
#: must equal ``FQ_DET_POW_KERNEL_ABI`` in the C source
ABI_VERSION = 2
#: the largest k the kernel's per-row accumulators hold (larger k: the torch path)
MAX_SPLITS = 64
#: rows per thread are at least this many elements (smaller calls run on one thread)
MIN_ELEMS_PER_THREAD = 1 << 17
# no -ffast-math: NaN/inf semantics stay IEEE; -fno-trapping-math lets the selects vectorise
_FLAGS = ['-O3', '-march=native', '-fopenmp-simd', '-fno-math-errno', '-fno-trapping-math', '-fPIC',
          '-shared']
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_tried = False
_pool: Optional[Tuple[int, ThreadPoolExecutor]] = None


class KernelUnavailable(Exception):
    """The library could not be built or loaded; the message names the file and the reason."""


def cache_dir() -> Path:
    """Where the compiled libraries and their records are kept."""
    return Path(os.environ.get('FQ_DET_CACHE', Path.home() / '.cache' / 'fq-det')) / 'kernels'


def _cpu_flags() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith(('flags', 'Features')):
                return line
    except OSError:
        pass
    return os.uname().machine


def _cache_key(cc: str) -> str:
    try:
        version = subprocess.run([cc, '--version'], capture_output=True, text=True).stdout
    except OSError as err:
        raise KernelUnavailable(f'C compiler {cc} does not run ({err})') from err
    return hashlib.sha256('\0'.join([SOURCE.read_text(), cc, version, _cpu_flags(),
                                     ' '.join(_FLAGS)]).encode()).hexdigest()[:16]


def _digest(path: Path) -> Tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def _open(path: Path) -> ctypes.CDLL:
    """Load ``path`` and declare the kernels' signatures; a foreign library raises."""
    try:
        lib = ctypes.CDLL(str(path))
        abi = lib.fq_det_pow_kernel_abi
    except (OSError, AttributeError) as err:
        raise KernelUnavailable(f'{path} is not a POW kernel library ({err})') from err
    abi.argtypes, abi.restype = [], ctypes.c_int32
    if abi() != ABI_VERSION:
        raise KernelUnavailable(f'{path} has kernel ABI {abi()}, expected {ABI_VERSION}')
    ptr, i64, i32, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float
    lib.pow_relu_forward.argtypes = [ptr, ptr, i64, i64, i64, ptr, i32, f32]
    lib.pow_relu_forward.restype = None
    lib.pow_relu_backward.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, ptr, i32, f32, i32]
    lib.pow_relu_backward.restype = None
    return lib


def _load_cached(record_path: Path) -> ctypes.CDLL:
    """The library named by ``record_path`` if its size, sha256 and ABI check out."""
    try:
        record = json.loads(record_path.read_text())
        name, size, sha = record['file'], record['size'], record['sha256']
        if not isinstance(name, str) or Path(name).name != name or not name.endswith('.so'):
            raise ValueError(f'file {name!r} is not a library name inside the cache')
    except FileNotFoundError as err:
        raise KernelUnavailable(f'{record_path} does not exist') from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise KernelUnavailable(f'{record_path} is not a valid kernel record ({err})') from err
    path = record_path.with_name(name)
    try:
        found = _digest(path)
    except OSError as err:
        raise KernelUnavailable(f'{path} cannot be read ({err})') from err
    if found != (size, sha):
        raise KernelUnavailable(f'{path} does not match its record ({found[0]} bytes, recorded '
                                f'{size}; sha256 {"matches" if found[1] == sha else "differs"})')
    return _open(path)


def _build(cc: str, cache: Path, key: str) -> ctypes.CDLL:
    """Compile into a fresh temporary directory, load from there, then rename into place."""
    record_path = cache / f'pow_kernel-{key}.json'
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix='.build-') as tmp:
            out = Path(tmp) / 'pow_kernel.so'
            subprocess.run([cc, *_FLAGS, str(SOURCE), '-o', str(out), '-lm'], check=True,
                           capture_output=True, text=True)
            size, sha = _digest(out)
            lib = _open(out)  # a fresh name: never a library this process loaded before
            name = f'pow_kernel-{key}-{sha[:16]}.so'
            os.replace(out, cache / name)
            record = Path(tmp) / 'record.json'
            record.write_text(json.dumps(dict(file=name, size=size, sha256=sha, abi=ABI_VERSION)))
            os.replace(record, record_path)
    except subprocess.CalledProcessError as err:
        detail = ' '.join((err.stderr or '').split())[:300] or err  # one line
        raise KernelUnavailable(f'compiling {SOURCE} into {cache} failed: {detail}') from err
    except OSError as err:
        raise KernelUnavailable(f'cannot build the kernels in {cache} ({err})') from err
    return lib


def _load_or_build(cc: str) -> ctypes.CDLL:
    cache, key = cache_dir(), _cache_key(cc)
    record_path = cache / f'pow_kernel-{key}.json'
    try:
        return _load_cached(record_path)
    except KernelUnavailable as doubt:
        if not record_path.exists():  # first use on this machine
            return _build(cc, cache, key)
        try:  # a damaged or foreign cache entry: rebuild, and say so
            lib = _build(cc, cache, key)
        except KernelUnavailable as err:
            raise KernelUnavailable(f'{doubt}, and rebuilding failed: {err}') from err
        print_log(f'fq_det: {doubt}; rebuilt the POW kernels', logger='current',
                  level=logging.WARNING)
        return lib


def pow_kernel() -> Optional[ctypes.CDLL]:
    """The compiled kernels, or ``None`` when switched off, without a C compiler (one warning
    line) or when no library can be verified or built (one warning naming the file)."""
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
                      logger='current', level=logging.WARNING)
            return None
        try:
            _lib = _load_or_build(cc)
        except KernelUnavailable as err:
            print_log(f'fq_det: {err}; POW runs on the slower pure-torch path', logger='current',
                      level=logging.WARNING)
        return _lib


def kernel_for(t: Tensor, width, k: int, relu: bool) -> Optional[ctypes.CDLL]:
    """The kernels if they apply to this call (CPU float32, ReLU, fixed width), else None."""
    if not relu or t.dtype != torch.float32 or t.device.type != 'cpu' or torch.is_tensor(width) \
            or k > MAX_SPLITS or t.dim() < 2 or t.numel() == 0:
        return None
    return pow_kernel()


def run_rows(fn, rows: int, cols: int, head: tuple, tail: tuple) -> None:
    """``fn(*head, r0, r1, cols, *tail)`` over row ranges, on torch's intra-op thread count."""
    global _pool
    threads = min(torch.get_num_threads(), max(1, rows * cols // MIN_ELEMS_PER_THREAD), rows)
    if threads <= 1:
        fn(*head, 0, rows, cols, *tail)
        return
    if _pool is None or _pool[0] != os.getpid() or _pool[1]._max_workers < threads:
        # a forked child inherits the pool object but not its threads: make its own
        _pool = (os.getpid(),
                 ThreadPoolExecutor(max_workers=threads, thread_name_prefix='fq_det_pow'))
    bounds = [rows * i // threads for i in range(threads + 1)]
    futures = [_pool[1].submit(fn, *head, r0, r1, cols, *tail)
               for r0, r1 in zip(bounds[:-1], bounds[1:]) if r1 > r0]
    for f in futures:
        f.result()


def forward(lib: ctypes.CDLL, x2: Tensor, y2: Tensor, prow: Tensor, k: int, w: float) -> None:
    """``y2 = POW_k(max(x2, 0))`` for contiguous float32 ``(rows, cols)`` views (may alias)."""
    prow = prow.contiguous()
    run_rows(lib.pow_relu_forward, x2.shape[0], x2.shape[1], (x2.data_ptr(), y2.data_ptr()),
             (prow.data_ptr(), k, w))


def backward(lib: ctypes.CDLL, y2: Tensor, g2: Tensor, prow: Tensor, k: int, w: float,
             need_p: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """``dL/dx`` (shaped like ``y2``) and, with ``need_p``, ``dL/dp`` per row ``(rows, k)`` in
    float64, from the forward output ``y2`` and the upstream gradient ``g2``."""
    prow = prow.contiguous()
    gx = torch.empty_like(y2)
    dp = torch.zeros(y2.shape[0] if need_p else 1, k, dtype=torch.float64)
    run_rows(lib.pow_relu_backward, y2.shape[0], y2.shape[1],
             (y2.data_ptr(), g2.data_ptr(), gx.data_ptr(), dp.data_ptr()),
             (prow.data_ptr(), k, w, int(need_p)))
    return gx, (dp.mul_(w * math.log(2)) if need_p else None)
