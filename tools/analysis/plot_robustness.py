"""Metric against distortion severity (supplement Fig. 3) and mPC / rPC bars, from results.json.

    python tools/analysis/plot_robustness.py A/results.json B/results.json \
        --labels base pow --out robustness.png

One subplot per distortion (severity 0 = clean), one line per model; the last two
panels compare mPC and rPC. A CSV of the plotted numbers is written beside the PNG. A
missing, truncated or foreign results file is one ``error:`` line naming it (exit status 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fq_det.cli import check_output_file, report_user_errors
from fq_det.visualization import load_results, plot_robustness


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('results', nargs='+', help='results.json files of the robustness sweep')
    p.add_argument('--labels', nargs='+', default=None,
                   help='one label per file (default: the name of the folder holding it)')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--ncols', type=int, default=4, help='subplots per row')
    return p.parse_args(argv)


@report_user_errors
def main(argv=None) -> dict:
    args = parse_args(argv)
    labels = args.labels or [Path(r).resolve().parent.name for r in args.results]
    if len(labels) != len(args.results):
        raise ValueError(f'--labels: got {len(labels)} labels for {len(args.results)} results '
                         'files; give one per file')
    results = [load_results(r) for r in args.results]
    check_output_file(args.out, '--out figure')
    out = plot_robustness(results, labels, args.out, ncols=args.ncols)
    print(f"wrote {out['figure']}\nwrote {out['csv']}")
    return out


if __name__ == '__main__':
    main()
