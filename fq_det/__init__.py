"""fq-det: feature quantization (SF, POW, HPOW) for distortion-robust detection.

Importing the package registers everything in MMDetection's registries, so a config
only needs ``custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)``.
"""
from . import compat  # noqa: F401  (first: stack fixes before anything loads checkpoints)
from . import classification, datasets, engine, evaluation, models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
