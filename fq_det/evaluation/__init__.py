"""Evaluation under distortion: the robustness sweep, its store, per-image records."""
from . import per_image, robustness, sweep_store  # noqa: F401  (registers the metrics)
from .per_image import (PerImageClsRecords, PerImageDetRecords, load_per_image,
                        topk_accuracy_of_subset, voc_map_of_subset)
from .robustness import SWEEP_PRESETS, format_results_table, insert_distort, run_sweep
from .summary import summarize
from .sweep_store import OutDirNotWritableError, StaleResultsError, SweepFileError

__all__ = ['run_sweep', 'SWEEP_PRESETS', 'format_results_table', 'insert_distort',
           'summarize', 'PerImageDetRecords', 'PerImageClsRecords', 'load_per_image',
           'voc_map_of_subset', 'topk_accuracy_of_subset', 'StaleResultsError',
           'SweepFileError', 'OutDirNotWritableError']
