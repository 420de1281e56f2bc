"""Figures: detection grids under distortion, robustness curves, histogram panels."""
from .detection_grid import draw_detection_grid, read_voc_boxes
from .histograms import plot_histogram_panels
from .quantizer_curves import plot_pow_curves
from .robustness_plots import load_results, plot_robustness

__all__ = ['draw_detection_grid', 'read_voc_boxes', 'plot_histogram_panels', 'plot_pow_curves',
           'load_results',
           'plot_robustness']
