"""Classification pipeline transforms (registered in mmdet's TRANSFORMS).

* ``PackClsInputs``: ``img`` (HxWx3 uint8) -> ``inputs`` (3xHxW tensor) and a
  ``BaseDataElement`` data sample holding ``gt_label`` and meta keys.
* ``ClsRandomCrop``: zero-pad by ``padding`` then crop ``size`` at a random place (CIFAR).
* ``ClsRandomResizedCrop``: random area/aspect crop resized to ``size`` (ImageNet).
* ``WholeImageBox``: adds ``gt_bboxes`` = one box (K=1) so box-dependent distortions
  (targeted occlusion) have an "object" in classification images.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmdet.registry import TRANSFORMS

META_KEYS = ('img_id', 'img_path', 'sample_idx', 'ori_shape', 'img_shape')


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack ``img``/``gt_label`` as ``dict(inputs=Tensor[3,H,W], data_samples=BaseDataElement)``."""

    def __init__(self, meta_keys: tuple = META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError("PackClsInputs needs 'img' in the results; add LoadImageFromFile "
                           'before it for file-based data sets')
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        if 'gt_label' in results:
            sample.gt_label = torch.tensor(int(results['gt_label']), dtype=torch.long)
        return dict(inputs=inputs, data_samples=sample)


@TRANSFORMS.register_module()
class ClsRandomCrop(BaseTransform):
    """Pad each side by ``padding`` (value ``pad_val``), then crop ``size`` x ``size`` at random."""

    def __init__(self, size: int, padding: int = 0, pad_val: int = 0) -> None:
        if size < 1 or padding < 0:
            raise ValueError(f'need size >= 1 and padding >= 0, got {size}, {padding}')
        self.size, self.padding, self.pad_val = size, padding, pad_val

    def transform(self, results: dict) -> dict:
        img = results['img']
        if self.padding:
            p = self.padding
            img = cv2.copyMakeBorder(
                img, p, p, p, p, cv2.BORDER_CONSTANT, value=(self.pad_val, ) * 3)
        h, w = img.shape[:2]
        if h < self.size or w < self.size:
            raise ValueError(
                f'ClsRandomCrop: image {h}x{w} (after padding) is smaller than {self.size}')
        y = np.random.randint(0, h - self.size + 1)
        x = np.random.randint(0, w - self.size + 1)
        results['img'] = np.ascontiguousarray(img[y:y + self.size, x:x + self.size])
        results['img_shape'] = (self.size, self.size)
        return results


@TRANSFORMS.register_module()
class ClsRandomResizedCrop(BaseTransform):
    """Crop a random region of area ``s * A`` (s ~ U(scale)), aspect ``r`` (log r ~ U(log ratio)),
    resize it to ``size`` x ``size``; falls back to the central square after 10 tries."""

    def __init__(self, size: int, scale: tuple = (0.08, 1.0),
                 ratio: tuple = (3 / 4, 4 / 3)) -> None:
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f'invalid scale {scale} or ratio {ratio}')
        self.size, self.scale, self.ratio = size, scale, ratio

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        for _ in range(10):
            area = h * w * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                y, x = np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)
                break
        else:
            ch = cw = min(h, w)
            y, x = (h - ch) // 2, (w - cw) // 2
        crop = img[y:y + ch, x:x + cw]
        results['img'] = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        results['img_shape'] = (self.size, self.size)
        return results


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
