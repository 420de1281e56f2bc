"""POW/HPOW layers alone: compiled CPU kernels against the pure-torch path and plain ReLU.

The full-network benchmark (benchmark_quantizers.py) divides two 6-7 s timings whose
run-to-run spread on a shared 2-core VM (10-15 %) exceeds what the kernels cost. This one
times only the activation layers, on the exact activation shapes of a ResNet-50 with a
2 x 3 x 512 x 512 input (every ReLU of stages 1-4, 92 M elements), forward + backward,
round-robin, median of ``--repeats``, and prints the overhead per element over ReLU and the
network time ratio it implies for a given plain-network time::

    python tools/benchmarks/benchmark_pow_kernels.py --repeats 5 --network-time 6.5

``--inductor`` adds POW-k written as whole-tensor torch code (forward, and backward from
the output as the fused functions do) compiled by ``torch.compile`` (inductor's CPU
backend), and prints its compile time and the kernels inductor generated: the
alternative to hand-written Triton kernels that docs/quantizers.md measures.
"""
from __future__ import annotations

import argparse
import ctypes
import math
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when the benchmark runs
    import torch

REPO_ROOT = str(Path(__file__).resolve().parents[2])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def resnet50_activation_shapes(batch: int, size: int) -> list[tuple[int, int, int, int]]:
    """(N, C, H, W) after each quantized ReLU of mmdet's ResNet-50 (pytorch style)."""
    shapes, res = [], size // 4
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for b in range(blocks):
            first = b == 0 and stage > 0
            shapes += [(batch, width, res * 2 if first else res, res * 2 if first else res),
                       (batch, width, res, res), (batch, width * 4, res, res)]
        res //= 2
    return shapes


def inductor_pow(k: int):
    """POW-k fused with the ReLU as whole-tensor torch code for ``torch.compile``: forward,
    and backward from the output (``dL/dx``, per-row per-segment ``dL/dp``)."""
    import torch

    def forward(x, p):  # x: (R, S), p: (R, k)
        a = x.clamp(min=0)
        j = a.floor().clamp(max=k - 1)
        u = (a - j).clamp(min=1e-30)
        pe = torch.gather(p, 1, j.long())
        t = torch.where(a - j > 1e-30, torch.exp2(pe * torch.log2(u)), 0.0)
        return j + t

    def backward(y, g, p):
        j = y.floor().clamp(0, k - 1)
        u = y - j
        jl = j.long()
        pe = torch.gather(p, 1, jl)
        l2 = (torch.log2(u.clamp(1e-30, 3.4e38)) / pe).clamp(min=-19.93)
        v = g * u * l2
        dp = torch.zeros(p.shape, dtype=torch.float32).scatter_add(1, jl, v) * 0.6931
        gx = torch.where(y > 0, g * pe * torch.exp2(l2 * (pe - 1)), 0.0)
        return gx, dp

    return torch.compile(forward), torch.compile(backward)


def time_inductor(xs, gs, k: int, gen) -> tuple[float, float, int]:
    """``(compile s, fwd+bwd s, kernels generated)`` over the activations, compiled per shape."""
    import torch
    from torch._inductor import metrics
    torch._dynamo.reset()
    metrics.reset()
    fwd, bwd = inductor_pow(k)
    p_of = {x.shape[1]: 1 + torch.empty(x.shape[0] * x.shape[1], k).uniform_(-0.3, 0.3,
                                                                               generator=gen)
            for x in xs}

    def run():
        t0 = time.process_time()
        for x, g in zip(xs, gs):
            rows = x.shape[0] * x.shape[1]
            p = p_of[x.shape[1]][:rows]
            y = fwd(x.view(rows, -1), p)
            bwd(y, g.view(rows, -1), p)
        return time.process_time() - t0

    t0 = time.perf_counter()
    run()  # compiles (recompiles per new shape until dynamic shapes kick in)
    compile_s = time.perf_counter() - t0
    return compile_s, run(), metrics.generated_kernel_count


def parse_args(argv=None) -> argparse.Namespace:
    """The benchmark's options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--splits', type=int, nargs='+', default=[1, 16])
    p.add_argument('--network-time', type=float, default=6.5,
                   help='plain ResNet-50 fwd+bwd seconds, for the implied time ratio')
    p.add_argument('--inductor', action='store_true',
                   help='also time POW-k compiled by torch.compile (see the docstring)')
    return p.parse_args(argv)


def main(argv=None) -> None:
    """Time ReLU and the POW-k variants over ResNet-50's activations and print the table."""
    args = parse_args(argv)
    import torch

    from fq_det.models.quantizers import kernels
    torch.set_num_threads(args.threads)
    lib = kernels.pow_kernel()
    shapes = resnet50_activation_shapes(args.batch, args.size)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(s, generator=gen) for s in shapes]
    gs = [torch.randn(s, generator=gen) for s in shapes]
    times = time_layers(xs, gs, args.splits, args.repeats, lib, gen)
    kernels._lib, kernels._tried = lib, True
    compiled = {}
    if args.inductor:
        compiled = time_inductor_variants(xs, gs, args.splits, args.repeats, gen, times)
    print_table(times, compiled, shapes, args, bool(lib))


def time_layers(xs: list[torch.Tensor], gs: list[torch.Tensor], splits: list[int], repeats: int,
                lib: ctypes.CDLL | None, gen: torch.Generator) -> dict[str, list[float]]:
    """CPU seconds of every variant (ReLU, POW-k on the torch path and, where ``lib`` is
    loaded, on the C kernel) per timed round; variants round-robin, one warm-up round."""
    variants = {'ReLU': (None, False)}
    for k in splits:
        variants[f'POW-{k} torch path'] = (k, False)
        if lib is not None:
            variants[f'POW-{k} C kernel'] = (k, True)
    times = {n: [] for n in variants}
    for r in range(repeats + 1):
        for name, (k, use) in variants.items():
            t = time_layer(xs, gs, k, lib if use else None, gen)
            if r:
                times[name].append(t)
    return times


def time_layer(xs: list[torch.Tensor], gs: list[torch.Tensor], k: int | None,
               lib: ctypes.CDLL | None, gen: torch.Generator) -> float:
    """CPU seconds of forward + backward over all activations: ReLU for ``k=None``, else
    POW-k with random exponents, on the C kernel ``lib`` or (``None``) the torch path."""
    import torch

    from fq_det.models.quantizers import functional as F_q
    from fq_det.models.quantizers import kernels
    kernels._lib, kernels._tried = lib, True
    total = 0.0
    for x0, g in zip(xs, gs):
        x = x0.clone().requires_grad_()
        p_ = (1 + torch.empty(1, x0.shape[1], k or 1).uniform_(-0.3, 0.3, generator=gen)
              ).requires_grad_()
        xx = x * 1  # a non-leaf, like the BatchNorm output the layer overwrites
        t0 = time.process_time()
        y = torch.relu_(xx) if k is None else F_q.pow_quant(xx, p_, 1.0, k, relu=True,
                                                            inplace=True)
        y.backward(g)
        total += time.process_time() - t0
    return total


def time_inductor_variants(xs: list[torch.Tensor], gs: list[torch.Tensor], splits: list[int],
                           repeats: int, gen: torch.Generator,
                           times: dict[str, list[float]]) -> dict[int, tuple[float, int]]:
    """Adds ``POW-k inductor`` timings to ``times``; returns per k the shortest compile
    time and the number of kernels inductor generated."""
    compiled = {}
    for k in splits:
        c_s, ts = None, []
        for _ in range(repeats):
            c, t, count = time_inductor(xs, gs, k, gen)
            c_s = c if c_s is None else min(c_s, c)
            ts.append(t)
        times[f'POW-{k} inductor'] = ts
        compiled[k] = (c_s, count)
    return compiled


def print_table(times: dict[str, list[float]], compiled: dict[int, tuple[float, int]],
                shapes: list[tuple[int, int, int, int]], args: argparse.Namespace,
                kernels_on: bool) -> None:
    """Median time per variant, its overhead per element over ReLU and the network time
    ratio that overhead implies; then the inductor compile times."""
    numel = sum(math.prod(s) for s in shapes)
    base = statistics.median(times['ReLU'])
    print(f'{len(shapes)} activations, {numel / 1e6:.1f} M elements, {args.threads} thread(s), '
          f'CPU time, median of {args.repeats}; kernels: {"on" if kernels_on else "unavailable"}')
    print('| layer | fwd+bwd (s) | over ReLU (ns/element) | implied network time ratio |')
    print('|---|---|---|---|')
    for name, ts in times.items():
        med = statistics.median(ts)
        extra = med - base
        print(f'| {name} | {med:.3f} | {extra / numel * 1e9:.2f} | '
              f'{(args.network_time + extra) / args.network_time:.3f} |')
    for k, (c_s, count) in compiled.items():
        print(f'POW-{k} inductor: first pass over the {len(shapes)} shapes (compiling) '
              f'{c_s:.1f} s wall, {count} kernels generated')


if __name__ == '__main__':
    main()
