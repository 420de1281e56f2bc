"""Sweep time with test-time BN adaptation against the same sweep without it.

    python tools/benchmarks/benchmark_bn_adapt.py CONFIG CHECKPOINT --data-root DIR
        [--detection] [--distortions ngrn jpeg] [--severities 1 3 5] [--num-images 64]
        [--repeats 2]

Runs the robustness sweep (classification by default, ``--detection`` for detectors)
``--repeats`` times each way, alternating, into fresh folders, and prints the process
CPU time of each (``time.process_time``: other jobs on a shared machine barely disturb
it), the median of each and their ratio. BN adaptation adds one forward pass over
``--num-images`` images per evaluated condition.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--data-root', required=True)
    p.add_argument('--detection', action='store_true', help='CONFIG is a detector')
    p.add_argument('--distortions', nargs='+', default=['ngrn'])
    p.add_argument('--severities', type=int, nargs='+', default=[1, 3, 5])
    p.add_argument('--num-images', type=int, default=64, help='BN adaptation images')
    p.add_argument('--prior-strength', type=float, default=0.0)
    p.add_argument('--repeats', type=int, default=2)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    warnings.filterwarnings('ignore')
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    import fq_det  # noqa: F401
    from fq_det.datasets.data_check import set_data_root
    from fq_det.evaluation import run_sweep
    torch.set_num_threads(1)
    cfg = Config.fromfile(args.config)
    set_data_root(cfg, args.data_root)
    hook = dict(type='mmdet.BNAdaptHook', prior_strength=args.prior_strength,
                num_images=args.num_images)
    times = {'plain': [], 'bn_adapt': []}
    for _ in range(args.repeats):
        for name in times:
            c = copy.deepcopy(cfg)
            if name == 'bn_adapt':
                c.custom_hooks = list(c.get('custom_hooks') or []) + [hook]
            with tempfile.TemporaryDirectory() as out:
                start = time.process_time()
                run_sweep('detection' if args.detection else 'classification', c,
                          args.checkpoint, out, distortions=args.distortions,
                          severities=args.severities)
                times[name].append(time.process_time() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    conditions = 1 + len(args.distortions) * len(args.severities)
    print(f'\nsweep of {conditions} conditions, CPU seconds per run: '
          + '; '.join(f'{k}: ' + ', '.join(f'{t:.1f}' for t in v) for k, v in times.items()))
    print(f'median: plain {med["plain"]:.1f} s, with BN adaptation ({args.num_images} images per '
          f'condition) {med["bn_adapt"]:.1f} s, ratio {med["bn_adapt"] / med["plain"]:.3f}')
    return dict(times=times, median=med)


if __name__ == '__main__':
    main()
