"""``ClipGtBoxes``: ground-truth boxes clipped to the image (the data check's ``clip`` mode).

The data check (:func:`fq_det.datasets.data_check.check_data` with
``invalid_boxes='clip'``) inserts it right after every ``LoadAnnotations`` of a data set
whose annotations hold boxes outside the image or with ``xmin > xmax``.
"""
from __future__ import annotations

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS

__all__ = ['ClipGtBoxes']


@TRANSFORMS.register_module()
class ClipGtBoxes(BaseTransform):
    """Clip ``gt_bboxes`` to the original image; drop boxes with ``x2 < x1`` or ``y2 < y1``.

    ``x1, x2 <- clip(x, 0, W)``, ``y1, y2 <- clip(y, 0, H)`` with ``(H, W) = ori_shape``
    (``LoadAnnotations`` always gives boxes in original pixels). A reversed box cannot be
    repaired by clipping and is dropped with its label and ignore flag.

    Required keys: ``gt_bboxes``, ``ori_shape`` (or ``img_shape``). Modified keys:
    ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``.
    """

    def transform(self, results: dict) -> dict:
        boxes = results.get('gt_bboxes')
        if boxes is None:
            return results
        h, w = results.get('ori_shape', results.get('img_shape'))[:2]
        tensor = boxes.tensor if hasattr(boxes, 'tensor') else torch.as_tensor(boxes)
        keep = (tensor[:, 2] >= tensor[:, 0]) & (tensor[:, 3] >= tensor[:, 1])
        clipped = tensor.clone()
        clipped[:, 0::2] = clipped[:, 0::2].clamp(0, w)
        clipped[:, 1::2] = clipped[:, 1::2].clamp(0, h)
        clipped = clipped[keep]
        results['gt_bboxes'] = type(boxes)(clipped) if hasattr(boxes, 'tensor') else \
            np.asarray(clipped.numpy(), dtype=np.asarray(boxes).dtype)
        mask = keep.numpy()
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if key in results:
                results[key] = results[key][mask]
        return results
