"""Evaluation under distortion: the robustness sweep and its results table."""
from . import robustness  # noqa: F401
from .robustness import format_results_table, insert_distort, run_robustness_sweep, summarize

__all__ = ['run_robustness_sweep', 'format_results_table', 'insert_distort', 'summarize']
