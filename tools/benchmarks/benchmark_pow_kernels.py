"""POW/HPOW layers alone: compiled CPU kernels against the pure-torch path and plain ReLU.

The full-network benchmark (benchmark_quantizers.py) divides two 6-7 s timings whose
run-to-run spread on a shared 2-core VM (10-15 %) exceeds what the kernels cost. This one
times only the activation layers, on the exact activation shapes of a ResNet-50 with a
2 x 3 x 512 x 512 input (every ReLU of stages 1-4, 92 M elements), forward + backward,
round-robin, median of ``--repeats``, and prints the overhead per element over ReLU and the
network time ratio it implies for a given plain-network time::

    python tools/benchmarks/benchmark_pow_kernels.py --repeats 5 --network-time 6.5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--splits', type=int, nargs='+', default=[1, 16])
    p.add_argument('--network-time', type=float, default=6.5,
                   help='plain ResNet-50 fwd+bwd seconds, for the implied time ratio')
    args = p.parse_args(argv)
    import torch

    from fq_det.models.quantizers import functional as F_q
    from fq_det.models.quantizers import kernels
    torch.set_num_threads(args.threads)
    lib = kernels.pow_kernel()
    shapes = resnet50_activation_shapes(args.batch, args.size)
    numel = sum(torch.Size(s).numel() for s in shapes)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(s, generator=gen) for s in shapes]
    gs = [torch.randn(s, generator=gen) for s in shapes]

    def run(k: int | None, use_kernel: bool) -> float:
        kernels._lib, kernels._tried = (lib if use_kernel else None), True
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

    variants = {'ReLU': (None, False)}
    for k in args.splits:
        variants[f'POW-{k} torch path'] = (k, False)
        if lib is not None:
            variants[f'POW-{k} C kernel'] = (k, True)
    times = {n: [] for n in variants}
    for r in range(args.repeats + 1):
        for name, (k, use) in variants.items():
            t = run(k, use)
            if r:
                times[name].append(t)
    kernels._lib, kernels._tried = lib, True
    base = statistics.median(times['ReLU'])
    print(f'{len(shapes)} activations, {numel / 1e6:.1f} M elements, {args.threads} thread(s), '
          f'CPU time, median of {args.repeats}; kernels: {"on" if lib else "unavailable"}')
    print('| layer | fwd+bwd (s) | over ReLU (ns/element) | implied network time ratio |')
    print('|---|---|---|---|')
    for name, ts in times.items():
        med = statistics.median(ts)
        extra = med - base
        print(f'| {name} | {med:.3f} | {extra / numel * 1e9:.2f} | '
              f'{(args.network_time + extra) / args.network_time:.3f} |')


if __name__ == '__main__':
    main()
