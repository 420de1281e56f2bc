"""Data: pure distortion functions, the one distortion route, the transforms that wrap
them, the data check and the synthetic VOC set."""
from . import clip_boxes, distortion_route, distortions, synthetic_voc, transforms  # noqa: F401
