"""Tables over several runs.

Table 1 (classification error %, mean ± std over training seeds):
    python tools/classification/summarize.py table1 'Base=work_dirs/smallnet_cifar10_s*' \
        '+POW-1 L1=work_dirs/smallnet-pow1-l1_cifar10_s*' ...
Table 3 (several robustness results in one table):
    python tools/classification/summarize.py table3 a/results.json b/results.json [--labels A B]
"""
from __future__ import annotations

import argparse
import glob
import json
import sys

import fq_det  # noqa: F401
from fq_det.cli import report_user_errors
from fq_det.classification.robustness import format_classification_table
from fq_det.classification.tables import best_metric, format_table1


def _read_results(path: str) -> dict:
    """A results.json of test_robustness.py; a named error when missing or truncated."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'results file not found: {path}') from None
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not valid JSON (truncated?): {err}') from None


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='table', required=True)
    t1 = sub.add_parser('table1', help='error = 100 - best val top-1, over the runs of each row')
    t1.add_argument(
        'rows', nargs='+', help="'LABEL=GLOB' where GLOB matches the work dirs of the row's runs")
    t3 = sub.add_parser('table3', help='merge results.json files of test_robustness.py')
    t3.add_argument('results', nargs='+')
    t3.add_argument('--labels', nargs='+')
    args = parser.parse_args(argv)
    if args.table == 'table1':
        rows = {}
        for row in args.rows:
            label, sep, pattern = row.partition('=')
            dirs = sorted(glob.glob(pattern))
            if not sep or not dirs:
                print(
                    f"error: '{row}' must be LABEL=GLOB matching at least one work dir",
                    file=sys.stderr)
                return 2
            rows[label] = [100.0 - best_metric(d) for d in dirs]
        print(format_table1(rows, columns=('error (%)', )))
    else:
        results = [_read_results(p) for p in args.results]
        if args.labels and len(args.labels) != len(results):
            print('error: give one label per results file', file=sys.stderr)
            return 2
        print(format_classification_table(results, args.labels))
    return 0


if __name__ == '__main__':
    sys.exit(main())
