"""The distortion transforms in classification pipelines (mmpretrain's TRANSFORMS).

Classification configs run in the ``mmpretrain`` scope, where mmdet's registry (and so
fq_det's distortion transforms) is not searched. As mmpretrain does with mmcv's transforms,
this module registers the same classes there:

* ``Distort`` / ``RandomDistort``: ``fq_det.datasets.transforms`` (seeded per image from
  ``img_id``/``img_path``; the test-time sweep and training augmentation).
* ``WholeImageBox``: adds ``gt_bboxes`` = the whole image, so box-dependent distortions
  (targeted occlusion) have an "object" in a classification image.

Cropping, flipping, resizing and packing are mmpretrain's (``RandomCrop``,
``RandomResizedCrop``, ``ResizeEdge``, ``CenterCrop``, ``RandomFlip``, ``PackInputs``).
"""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS

from fq_det.datasets.transforms import Distort, RandomDistort

for _transform in (Distort, RandomDistort):
    TRANSFORMS.register_module(module=_transform)


@MMDET_TRANSFORMS.register_module()  # the sweep inserts it as 'mmdet.WholeImageBox'
@TRANSFORMS.register_module()
class WholeImageBox(BaseTransform):
    """Add ``gt_bboxes`` (float32 (1, 4) xyxy): the whole image, or its central ``fraction``.

    Classification images have no boxes; the targeted-occlusion distortion needs one per
    object. The object of a classification image is assumed to fill it (``fraction=1``).
    """

    def __init__(self, fraction: float = 1.0) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f'fraction must be in (0, 1], got {fraction}')
        self.fraction = fraction

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        mx, my = w * (1 - self.fraction) / 2, h * (1 - self.fraction) / 2
        results['gt_bboxes'] = np.array([[mx, my, w - mx, h - my]], dtype=np.float32)
        return results
