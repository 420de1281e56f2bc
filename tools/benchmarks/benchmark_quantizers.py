"""Speed and peak memory of the quantized ResNet-50 backbones against plain mmdet ResNet-50.

Forward + backward of a batch (default 2 x 3 x 512 x 512) on CPU, in training mode,
with non-zero alphas (a fresh POW/HPOW would take the bit-exact identity fast path).

* time: all variants are built in one process and timed round-robin (so a change in
  machine load hits every variant alike); the median over ``--repeats`` is reported.
  With ``--clock cpu`` (default) the process CPU time is measured, which on a shared
  machine is far less sensitive to other processes than wall time; with one thread
  (default) the two agree on an idle machine. ``--clock wall`` measures wall time.
  ``--malloc reuse`` first tells glibc to keep freed memory (``mallopt``: no ``mmap`` per
  large tensor, no trimming), as PyTorch's caching allocator does on a GPU; by default
  (``--malloc default``) every large tensor is a fresh ``mmap`` whose page faults (system
  time, 0.0-1.6 s per ResNet-50 step measured here) count too, as they do for a CPU user.
  The plain ResNet allocates more than the in-place quantizers, so ``reuse`` makes the
  baseline faster and every ratio larger (see docs/quantizers.md).
* memory: each variant runs once more in a fresh subprocess with glibc's
  ``MALLOC_MMAP_THRESHOLD_`` lowered, so freed blocks go back to the OS and the resident
  set follows live memory; the peak is ``VmHWM - VmRSS`` around one forward + backward
  (``/proc/self/clear_refs`` resets the high-water mark first). Linux only.

Usage::

    python tools/benchmarks/benchmark_quantizers.py --repeats 3
    python tools/benchmarks/benchmark_quantizers.py --size 256 --repeats 2 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)

VARIANTS = {
    # name: (backbone cfg, time target, memory target)
    'ResNet': (dict(type='ResNet'), None, None),
    'ResNetSF (r=10)': (dict(type='ResNetSF', quant_cfg=dict(resolution=10)), 1.10, 1.20),
    'ResNetPOW (k=1)': (dict(type='ResNetPOW', quant_cfg=dict(num_splits=1)), 1.15, 1.25),
    'ResNetPOW (k=16)': (dict(type='ResNetPOW', quant_cfg=dict(num_splits=16)), 1.30, 1.30),
    'ResNetHPOW (k=1)': (dict(type='ResNetHPOW', quant_cfg=dict(num_splits=1)), 1.20, 1.30),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=512, help='input height and width')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per variant (median)')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--stages',
                        type=int,
                        nargs=4,
                        default=[1, 1, 1, 1],
                        help='stage_with_quant as 0/1 flags (default: all stages)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--clock',
                        choices=('cpu', 'wall'),
                        default='cpu',
                        help='process CPU time (robust on a busy machine) or wall time')
    parser.add_argument('--malloc', choices=('default', 'reuse'), default='default',
                        help="'reuse': glibc keeps freed memory for reuse while timing (see above)")
    parser.add_argument('--skip-memory', action='store_true')
    parser.add_argument('--out', type=Path, help='also write the results as JSON here')
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def keep_freed_memory() -> bool:
    """glibc ``mallopt``: serve large tensors from the heap and never trim it (Linux only)."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library('c')
    if not name or not sys.platform.startswith('linux'):
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(
        libc.mallopt(m_trim_threshold, 2**31 - 1))  # int arguments: 2 GiB is the most


def quiet_mmengine_logs() -> None:
    """Keep mmengine's per-parameter ``init_weights`` INFO lines out of the table."""
    import logging

    from mmengine.logging import MMLogger
    if not MMLogger.check_instance_created('fq_det_benchmark'):
        MMLogger.get_instance('fq_det_benchmark', log_level='WARNING')
    MMLogger.get_instance('fq_det_benchmark').setLevel(logging.WARNING)


def build(name: str, args: argparse.Namespace):
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import fq_det  # noqa: F401  (registers the backbones)
    from fq_det.models import HPOW, POW

    init_default_scope('mmdet')
    quiet_mmengine_logs()
    cfg = dict(VARIANTS[name][0], depth=args.depth)
    if cfg['type'] != 'ResNet':
        cfg['stage_with_quant'] = tuple(bool(s) for s in args.stages)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    for m in model.modules():  # realistic, non-identity exponents
        if isinstance(m, POW):
            torch.nn.init.uniform_(m.alpha, -0.3, 0.3)
        elif isinstance(m, HPOW):
            torch.nn.init.normal_(m.expand_weight, 0, 0.01)
            torch.nn.init.uniform_(m.expand_bias, -0.3, 0.3)
    model.train()  # mmdet's ResNet.train() returns None
    return model


def step(model, x, clock=time.perf_counter) -> float:
    start = clock()
    outs = model(x)
    sum(o.float().square().mean() for o in outs).backward()
    model.zero_grad(set_to_none=True)
    return clock() - start


def _proc_kb(field: str) -> int:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def memory_worker(args: argparse.Namespace) -> None:
    """One variant, fresh process: peak resident memory of one forward + backward (MB)."""
    import gc

    import torch
    torch.set_num_threads(args.threads)
    model = build(args.memory_worker, args)
    step(model, torch.randn(1, 3, 64, 64))  # load kernels / libraries once
    x = torch.randn(args.batch, 3, args.size, args.size)
    gc.collect()
    Path('/proc/self/clear_refs').write_text('5')  # reset VmHWM to the current RSS
    base = _proc_kb('VmRSS')
    step(model, x)
    print(json.dumps({'peak_mb': (_proc_kb('VmHWM') - base) / 1024}))


def measure_memory(name: str, args: argparse.Namespace) -> float:
    env = dict(os.environ,
               MALLOC_MMAP_THRESHOLD_='65536',
               MALLOC_TRIM_THRESHOLD_='0',
               OMP_NUM_THREADS=str(args.threads))
    cmd = [
        sys.executable, __file__, '--memory-worker', name, '--size',
        str(args.size), '--batch',
        str(args.batch), '--depth',
        str(args.depth), '--threads',
        str(args.threads), '--stages', *map(str, args.stages)
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_mb']


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.memory_worker:
        memory_worker(args)
        return
    import torch
    from mmengine.utils import ProgressBar

    torch.set_num_threads(args.threads)
    malloc = 'glibc defaults'
    if args.malloc == 'reuse':
        malloc = 'freed memory reused' if keep_freed_memory() else 'glibc defaults (mallopt failed)'
    names = ['ResNet'] + [n for n in args.variants if n != 'ResNet']
    models = {n: build(n, args) for n in names}
    x = torch.randn(args.batch, 3, args.size, args.size)
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    print(
        f'ResNet-{args.depth}, input {args.batch}x3x{args.size}x{args.size}, '
        f'{args.threads} thread(s), '
        f'{args.clock} time, malloc: {malloc}, '
        f'stage_with_quant={tuple(bool(s) for s in args.stages)}, '
        f'{args.repeats} timed run(s) + 1 warm-up'
    )
    times = {n: [] for n in names}
    bar = ProgressBar(len(names) * (args.repeats + 1))
    for r in range(args.repeats + 1):
        for n in names:
            t = step(models[n], x, clock)
            if r > 0:
                times[n].append(t)
            bar.update()
    del models
    memory = {}
    if not args.skip_memory:
        mbar = ProgressBar(len(names))
        for n in names:
            memory[n] = measure_memory(n, args)
            mbar.update()
    print()
    base_t = statistics.median(times['ResNet'])
    rows, results = [], {}
    header = (f'| backbone | {args.clock} time (s) | time ratio | target | peak memory (MB) | '
              'memory ratio | target |')
    rows += [header, '|' + '---|' * 7]
    for n in names:
        med = statistics.median(times[n])
        t_ratio = med / base_t
        m_ratio = memory[n] / memory['ResNet'] if memory else float('nan')
        _, t_target, m_target = VARIANTS[n]
        results[n] = dict(time_s=med,
                          times_s=times[n],
                          time_ratio=t_ratio,
                          time_target=t_target,
                          peak_mb=memory.get(n),
                          memory_ratio=m_ratio,
                          memory_target=m_target)

        def mark(v, target):
            return '' if target is None or v != v else (' ok' if v <= target else ' OVER')

        rows.append(f'| {n} | {med:.2f} | {t_ratio:.3f}{mark(t_ratio, t_target)} | '
                    f'{t_target or "-"} | {memory.get(n, float("nan")):.0f} | '
                    f'{m_ratio:.3f}{mark(m_ratio, m_target)} | {m_target or "-"} |')
    print('\n'.join(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(dict(args={
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
            },
                            results=results),
                       indent=2))


if __name__ == '__main__':
    main()
