"""Data: pure distortion functions, the transforms that wrap them, the synthetic VOC set."""
from . import distortions, synthetic_voc, transforms  # noqa: F401
