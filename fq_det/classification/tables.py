"""Tables over several runs: supplement Table 1 (error mean ± std over training seeds).

``best_metric(work_dir)`` reads what mmengine's ``LocalVisBackend`` logged
(``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object per line, read by
:func:`fq_det.utils.io.read_scalars`) and returns the best validation ``accuracy/top1``;
error = 100 - top-1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from fq_det.utils.io import read_scalars


def best_metric(work_dir: str | Path, key: str = 'accuracy/top1') -> float:
    """Largest ``key`` logged under ``work_dir`` (all timestamps, resumed runs included)."""
    values = [float(record[key]) for record in read_scalars(work_dir, recursive=True)
              if key in record]
    if not values:
        files = list(Path(work_dir).glob('**/vis_data/scalars.json'))
        raise FileNotFoundError(f"no '{key}' logged under '{work_dir}' (looked for "
                                f"{work_dir}/*/vis_data/scalars.json; {len(files)} file(s) found)")
    return max(values)


def format_table1(rows: Mapping[str, Sequence[float]], columns: Sequence[str] = ('error', )) -> str:
    """Markdown: one row per label, ``mean ± std`` (ddof 0) of each column's values.

    ``rows[label]`` is a list of values (one column) or a list of per-column lists.
    """
    lines = ['| Models | ' + ' | '.join(columns) + ' |', '|---|' + '---|' * len(columns)]
    for label, values in rows.items():
        cols = values if values and isinstance(values[0], (list, tuple)) else [values]
        cells = [
            f'{np.mean(v):.2f} ± {np.std(v):.2f} (n={len(v)})' if len(v) else '-' for v in cols
        ]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'
