"""The paper's analyses: feature-moment shift under distortion, learned POW exponents."""
from .alpha_stats import (EXPONENT_BINS, exponent_stats, extract_alphas, extract_exponents,
                          format_summary_table, summarize_alphas, write_summary_csv)
from .feature_shift import (build_detector_backbone, build_torchvision_model,
                            compute_feature_moment_shift, default_layers, list_images)
from .moments import MOMENT_NAMES, RunningMoments, moment_shift, summarize_shift

__all__ = [
    'extract_alphas', 'extract_exponents', 'exponent_stats', 'EXPONENT_BINS',
    'format_summary_table', 'summarize_alphas', 'write_summary_csv',
    'build_detector_backbone', 'build_torchvision_model', 'compute_feature_moment_shift',
    'default_layers', 'list_images', 'MOMENT_NAMES', 'RunningMoments', 'moment_shift',
    'summarize_shift',
]
