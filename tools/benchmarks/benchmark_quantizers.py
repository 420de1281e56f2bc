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

* kernel calls: per quantizer layer (SF-10, POW-1, POW-16, HPOW-1) and ReLU, the kernel
  launches of one forward + backward of a ``2 x 512 x 75 x 125`` activation (ResNet-50
  stage 2 at VOC resolution), counted with ``torch.profiler``
  (``fq_det.models.quantizers.launches``): on the device path a GPU takes (Triton kernels;
  on CPU run in Triton's interpreter, at ``2 x 512 x 4 x 4`` since the count does not
  depend on the size) and on the torch path (row blocks) that GPUs took before.

``--device cuda`` runs the GPU benchmark instead (skipped, with one line saying so, without
a CUDA GPU): plain mmdet ResNet-50 against each variant, forward + backward of
``2 x 3 x 800 x 1333`` in float32 and under ``torch.autocast`` float16 (median CUDA time
and peak allocated memory), the launch counts counted on the GPU, and ``--iters``
training iterations of the Faster R-CNN R-50 configs (``configs/faster_rcnn_r50.py``
against ``configs/faster_rcnn_r50_pow.py``) with MMDetection's ``--amp`` optimiser wrapper
on a synthetic batch. Targets: time <= 1.10x and peak memory <= 1.05x of plain.

Usage::

    python tools/benchmarks/benchmark_quantizers.py --repeats 3
    python tools/benchmarks/benchmark_quantizers.py --size 256 --repeats 2 --threads 2
    python tools/benchmarks/benchmark_quantizers.py --device cuda --out gpu.json  # < 5 min
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
    parser.add_argument('--skip-launches', action='store_true', help='no kernel-call counts')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                        help="'cuda': the GPU benchmark (see above)")
    parser.add_argument('--iters', type=int, default=5,
                        help='detector training iterations per variant (--device cuda)')
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


LAUNCH_LAYERS = {
    # name: (layer cfg, channels)
    'ReLU': (None, 512),
    'SF-10': (dict(type='SF', resolution=10), 512),
    'POW-1': (dict(type='POW', num_splits=1), 512),
    'POW-16': (dict(type='POW', num_splits=16), 512),
    'HPOW-1': (dict(type='HPOW', num_splits=1), 512),
}


def count_layer_calls(name: str, shape, device: str, device_path: bool) -> tuple[int, int]:
    """Kernel calls and synchronising calls of one forward + backward of the fused layer
    (not in place, so the input is a leaf and nothing but the layer runs)."""
    import torch

    from fq_det.models import build_quant_activation
    from fq_det.models.quantizers import kernels
    from fq_det.models.quantizers.launches import count_calls
    cfg, channels = LAUNCH_LAYERS[name]
    layer = torch.nn.ReLU() if cfg is None else build_quant_activation(dict(cfg), channels)
    if cfg is not None:
        layer.inplace = False
        for param in layer.parameters():
            torch.nn.init.uniform_(param, -0.3, 0.3)
    layer.to(device)
    x = torch.randn(shape, device=device, requires_grad=True)
    saved = os.environ.get('FQ_DET_FUSED_CPU'), kernels._lib, kernels._tried
    os.environ['FQ_DET_FUSED_CPU'] = '1' if device_path else '0'
    if not device_path:  # the torch path, as GPUs ran it before (not the CPU's C kernel)
        kernels._lib, kernels._tried = None, True
    try:
        box = {}
        fwd = count_calls(lambda: box.setdefault('y', layer(x)), device)
        g = torch.randn_like(box['y'])
        bwd = count_calls(lambda: torch.autograd.grad(box['y'], [x, *layer.parameters()], g),
                          device)
    finally:
        os.environ.pop('FQ_DET_FUSED_CPU')
        if saved[0] is not None:
            os.environ['FQ_DET_FUSED_CPU'] = saved[0]
        kernels._lib, kernels._tried = saved[1:]
    return fwd.launches + bwd.launches, len(fwd.syncs) + len(bwd.syncs)


def launch_table(device: str) -> tuple[list[str], dict]:
    """Markdown rows of the kernel calls per forward + backward, and the numbers."""
    big = (2, 512, 75, 125)
    small = big if device == 'cuda' else (2, 512, 4, 4)  # the interpreter is slow
    rows = ['| layer (2x512x75x125) | kernel calls, device path (Triton) | torch path | '
            'synchronising calls, device path | torch path |', '|---|---|---|---|---|']
    counts = {}
    for name in LAUNCH_LAYERS:
        fused_calls, fused_syncs = count_layer_calls(name, small, device, True)
        torch_calls, torch_syncs = count_layer_calls(name, big, device, False)
        counts[name] = dict(device_path=fused_calls, torch_path=torch_calls,
                            device_path_syncs=fused_syncs, torch_path_syncs=torch_syncs)
        rows.append(f'| {name} | {fused_calls} | {torch_calls} | {fused_syncs} | {torch_syncs} |')
    return rows, counts


def cuda_step(model, x, dtype):
    """``(seconds, peak MB)`` of one forward + backward on the GPU (autocast ``dtype``)."""
    import torch
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with torch.autocast('cuda', dtype=dtype, enabled=dtype is not None):
        outs = model(x)
        loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return time.perf_counter() - start, (torch.cuda.max_memory_allocated() - base) / 2**20


def gpu_backbones(args) -> tuple[list[str], dict]:
    """Time and peak-memory ratios of the variants against plain ResNet-50 on the GPU."""
    import torch
    x = torch.randn(args.batch, 3, 800, 1333, device='cuda')
    names = ['ResNet'] + [n for n in args.variants if n != 'ResNet']
    models = {n: build(n, args).cuda() for n in names}
    rows = ['| backbone | precision | time (ms) | time ratio | peak memory (MB) | memory ratio |',
            '|---|---|---|---|---|---|']
    results = {}
    for label, dtype in (('float32', None), ('autocast float16', torch.float16)):
        stats = {n: [] for n in names}
        for r in range(args.repeats + 2):  # 2 warm-up rounds (Triton compiles)
            for n in names:
                if r >= 2:
                    stats[n].append(cuda_step(models[n], x, dtype))
        base_t = statistics.median(t for t, _ in stats['ResNet'])
        base_m = max(m for _, m in stats['ResNet'])
        for n in names:
            t = statistics.median(t for t, _ in stats[n])
            m = max(m for _, m in stats[n])
            results[f'{n}, {label}'] = dict(time_s=t, time_ratio=t / base_t, peak_mb=m,
                                            memory_ratio=m / base_m)
            rows.append(f'| {n} | {label} | {t * 1e3:.1f} | {t / base_t:.3f} | {m:.0f} | '
                        f'{m / base_m:.3f} |')
    return rows, results


def detector_batch(model, size=(608, 1000), batch=2):
    """A synthetic training batch (random image, three boxes per image)."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8))
        xy = torch.rand(3, 2, generator=gen) * torch.tensor([size[1] - 200, size[0] - 200])
        boxes = torch.cat([xy, xy + 50 + torch.rand(3, 2, generator=gen) * 150], 1)
        sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size,
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, 20, (3, ),
                                                                              generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def gpu_detectors(args) -> tuple[list[str], dict]:
    """``--iters`` AMP training iterations of Faster R-CNN R-50 plain against R-50 + POW."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.optim import AmpOptimWrapper
    from mmengine.registry import init_default_scope

    import fq_det  # noqa: F401
    init_default_scope('mmdet')
    rows = ['| detector (--amp) | time per iteration (ms) | time ratio | peak memory (MB) | '
            'memory ratio |', '|---|---|---|---|---|']
    results = {}
    for name in ('faster_rcnn_r50', 'faster_rcnn_r50_pow'):
        cfg = Config.fromfile(str(Path(REPO_ROOT) / 'configs' / f'{name}.py'))
        cfg.model.backbone.init_cfg = None  # no download: random weights time the same
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).cuda().train()
        wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=1e-3),
                                  loss_scale='dynamic')
        data = detector_batch(model)
        times, peaks = [], []
        for i in range(args.iters + 2):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            start = time.perf_counter()
            model.train_step(data, wrapper)
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
                peaks.append((torch.cuda.max_memory_allocated() - base) / 2**20)
        results[name] = dict(time_s=statistics.median(times), peak_mb=max(peaks))
        del model, wrapper
        torch.cuda.empty_cache()
    base = results['faster_rcnn_r50']
    for name, r in results.items():
        r.update(time_ratio=r['time_s'] / base['time_s'], memory_ratio=r['peak_mb'] /
                 base['peak_mb'])
        rows.append(f'| {name} | {r["time_s"] * 1e3:.1f} | {r["time_ratio"]:.3f} | '
                    f'{r["peak_mb"]:.0f} | {r["memory_ratio"]:.3f} |')
    return rows, results


def main_cuda(args) -> None:
    import torch
    if not torch.cuda.is_available():
        print('--device cuda: no CUDA GPU is available here; the GPU benchmark is skipped '
              '(nothing measured)')
        return
    print(f'GPU: {torch.cuda.get_device_name()}; targets: time <= 1.10x, peak memory <= 1.05x '
          'of plain')
    results = {}
    for title, fn in (('kernel calls per forward + backward', lambda: launch_table('cuda')),
                      ('ResNet-50 forward + backward, 2x3x800x1333', lambda: gpu_backbones(args)),
                      (f'Faster R-CNN training, {args.iters} iterations', lambda: gpu_detectors(
                          args))):
        rows, results[title] = fn()
        print(f'\n{title}\n' + '\n'.join(rows), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(dict(device=torch.cuda.get_device_name(),
                                            results=results), indent=2))


def main(argv=None) -> None:
    """The CPU benchmark (or, with ``--device cuda``, the GPU one): time, peak memory and
    kernel calls of each variant against plain ResNet, printed as markdown tables."""
    args = parse_args(argv)
    if args.memory_worker:
        memory_worker(args)
        return
    if args.device == 'cuda':
        main_cuda(args)
        return
    # the device path's kernels run on CPU in Triton's interpreter, on before Triton imports
    os.environ.setdefault('TRITON_INTERPRET', '1')
    import torch

    torch.set_num_threads(args.threads)
    malloc = 'glibc defaults'
    if args.malloc == 'reuse':
        malloc = 'freed memory reused' if keep_freed_memory() else 'glibc defaults (mallopt failed)'
    names = ['ResNet'] + [n for n in args.variants if n != 'ResNet']
    times = time_backbones(names, args, malloc)
    memory = {} if args.skip_memory else measure_memories(names, args)
    print()
    rows, results = backbone_table(names, times, memory, args.clock)
    print('\n'.join(rows))
    launches = {}
    if not args.skip_launches:
        launch_rows, launches = launch_table('cpu')
        print('\nKernel calls per forward + backward (torch.profiler):\n' + '\n'.join(launch_rows))
    if args.out:
        write_results(args, results, launches)


def time_backbones(names: list[str], args: argparse.Namespace,
                   malloc: str) -> dict[str, list[float]]:
    """Seconds per forward + backward of each backbone, ``--repeats`` timed rounds after one
    warm-up, the backbones round-robin; prints what is measured first."""
    import torch
    from mmengine.utils import ProgressBar

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
    return times


def measure_memories(names: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Peak memory (MB) of each backbone, each in a fresh subprocess (:func:`measure_memory`)."""
    from mmengine.utils import ProgressBar

    memory = {}
    mbar = ProgressBar(len(names))
    for n in names:
        memory[n] = measure_memory(n, args)
        mbar.update()
    return memory


def _mark(v: float, target: float | None) -> str:
    """`` ok`` / `` OVER`` against a target; nothing without a target or for NaN."""
    return '' if target is None or v != v else (' ok' if v <= target else ' OVER')


def backbone_table(names: list[str], times: dict[str, list[float]], memory: dict[str, float],
                   clock: str) -> tuple[list[str], dict]:
    """Markdown rows of time and memory ratios against plain ResNet with their targets, and
    the numbers per backbone."""
    base_t = statistics.median(times['ResNet'])
    rows, results = [], {}
    header = (f'| backbone | {clock} time (s) | time ratio | target | peak memory (MB) | '
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
        rows.append(f'| {n} | {med:.2f} | {t_ratio:.3f}{_mark(t_ratio, t_target)} | '
                    f'{t_target or "-"} | {memory.get(n, float("nan")):.0f} | '
                    f'{m_ratio:.3f}{_mark(m_ratio, m_target)} | {m_target or "-"} |')
    return rows, results


def write_results(args: argparse.Namespace, results: dict, launches: dict) -> None:
    """``--out``: the arguments, the per-backbone numbers and the kernel calls as JSON."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(dict(args={
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
        },
                        results=results, kernel_calls=launches),
                   indent=2))


if __name__ == '__main__':
    main()
