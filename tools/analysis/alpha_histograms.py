"""Histograms of the learned POW exponents p per layer (supplement Fig. 2) and a table of alpha.

    python tools/analysis/alpha_histograms.py CHECKPOINT [--out-dir DIR] [--zero-tol 0.05]

Writes DIR/alpha_histograms.png and DIR/alpha_summary.csv and prints the table. A missing,
empty or unreadable checkpoint, or one torch's safe loader refuses, is one ``error:`` line
(exit status 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import fq_det  # noqa: F401  (registers everything; makes mmengine checkpoints loadable)
from fq_det.analysis import (extract_alphas, extract_exponents, format_summary_table,
                             summarize_alphas, write_summary_csv)
from fq_det.analysis.alpha_stats import NEAR_IDENTITY_BELOW
from fq_det.cli import check_output_dir, load_checkpoint_file, report_user_errors
from fq_det.visualization import plot_histogram_panels


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('checkpoint', help='checkpoint (.pth) of a POW model')
    p.add_argument('--out-dir', default=None, help='output folder (default: beside the checkpoint)')
    p.add_argument('--zero-tol', type=float, default=NEAR_IDENTITY_BELOW,
                   help='|alpha| below this counts as identity')
    p.add_argument('--bins', type=int, default=30)
    p.add_argument('--ncols', type=int, default=4, help='histogram panels per row')
    return p.parse_args(argv)


@report_user_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    load_checkpoint_file(args.checkpoint)  # a named error for a missing or unreadable file
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.checkpoint).parent / 'alpha_analysis'
    check_output_dir(out_dir, '--out-dir')
    alphas = extract_alphas(args.checkpoint)
    rows = summarize_alphas(alphas, zero_tol=args.zero_tol)
    csv_path = write_summary_csv(rows, out_dir / 'alpha_summary.csv')
    exponents = extract_exponents(args.checkpoint)  # through each layer's recorded reading
    fig = plot_histogram_panels(
        {f'{name} (n={p.size})': p for name, p in exponents.items()}, out_dir / 'alpha_histograms.png',
        ncols=args.ncols, bins=args.bins, xlabel='exponent p',
        suptitle=f'Learned POW exponents: {Path(args.checkpoint).name}')
    print(format_summary_table(rows).replace('tol', str(args.zero_tol)))
    print(f'\nwrote {fig}\nwrote {csv_path}')
    return {'figure': fig, 'csv': csv_path, 'rows': rows}


if __name__ == '__main__':
    main()
