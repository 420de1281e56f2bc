"""Plot POW's f(x) for several exponents p (docs/figures/pow_readings.png).

    python tools/analysis/plot_pow_curves.py [--out docs/figures/pow_readings.png] [--p 2 1 0.5 0.1 0.01]
"""
from __future__ import annotations

import argparse

import fq_det  # noqa: F401  (registers the plugin)
from fq_det.cli import check_output_file, report_user_errors
from fq_det.visualization import plot_pow_curves


@report_user_errors
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='docs/figures/pow_readings.png', help='output PNG')
    p.add_argument('--p', type=float, nargs='+', default=[2.0, 1.0, 0.5, 0.1, 0.01],
                   help='exponents to draw (> 0)')
    p.add_argument('--splits', type=int, nargs='+', default=[1, 2], help='k of each panel')
    args = p.parse_args(argv)
    if any(not v > 0 for v in args.p):
        p.error(f'--p: exponents must be > 0, got {args.p}')
    if any(k < 1 for k in args.splits):
        p.error(f'--splits: k must be >= 1, got {args.splits}')
    check_output_file(args.out, '--out figure')
    print(f'wrote {plot_pow_curves(args.out, args.p, args.splits)}')


if __name__ == '__main__':
    main()
