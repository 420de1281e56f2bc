"""mmcv transforms that apply :mod:`fq_det.datasets.distortions` inside a data pipeline.

``Distort`` is for test pipelines: reproducible, the same image always gets the same
distortion. ``RandomDistort`` is for training-time augmentation. Put either one
*before* ``Resize`` (distort the image at its original resolution) and, for
``targeted_occlusion``, after ``LoadAnnotations`` so that ``gt_bboxes`` exists::

    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Distort', distortion='motion_blur', severity=3),
        dict(type='Resize', scale=(1000, 600), keep_ratio=True),
        dict(type='PackDetInputs'),
    ]
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .distortion_route import distortion_rng, image_key, stable_seed  # noqa: F401
from .distortions import (DISTORTIONS, SEVERITIES, check_distortion, check_severity, distort,
                          needs_boxes)

__all__ = ['Distort', 'RandomDistort', 'stable_seed']


def _image_key(results: dict) -> str:
    """What identifies an image across machines: its id and file name (not the folder)."""
    return image_key(results.get('img_id'), results.get('img_path'))


def _boxes_of(results: dict, distortion: str) -> np.ndarray | None:
    """``gt_bboxes`` as an (K, 4) xyxy numpy array (mmdet box type, tensor or array)."""
    if not needs_boxes(distortion):
        return None
    boxes = results.get('gt_bboxes')
    if boxes is None:
        raise ValueError(f'{distortion!r} needs results["gt_bboxes"]; put the transform after '
                       f'LoadAnnotations(with_bbox=True), or choose a distortion that needs no '
                       f'boxes: {", ".join(d for d in DISTORTIONS if not needs_boxes(d))}')
    if hasattr(boxes, 'tensor'):  # mmdet.structures.bbox.BaseBoxes
        boxes = boxes.tensor
    if hasattr(boxes, 'detach'):  # torch.Tensor
        boxes = boxes.detach().cpu().numpy()
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _apply(results: dict, distortion: str, severity: int, rng: np.random.Generator) -> dict:
    img = results['img']
    if img.ndim == 2 or img.dtype != np.uint8:
        work = np.clip(np.rint(img), 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img
        work = np.repeat(work[..., None], 3, axis=2) if work.ndim == 2 else work
        out = distort(work, distortion, severity, rng, boxes=_boxes_of(results, distortion))
        out = out[..., 0] if img.ndim == 2 else out
        results['img'] = out.astype(img.dtype)
    else:
        results['img'] = distort(img, distortion, severity, rng,
                                 boxes=_boxes_of(results, distortion))
    results['distortion'] = (distortion, severity)
    return results


@TRANSFORMS.register_module()
class Distort(BaseTransform):
    """Apply one distortion at one severity, identically for an image in every run.

    The generator is :func:`fq_det.datasets.distortion_route.distortion_rng` of ``(seed,
    image id and file name, distortion, severity)``, so the result does not depend on the order of the
    images, the number of dataloader workers or the process.

    Required keys: ``img`` (and ``img_id`` or ``img_path``; ``gt_bboxes`` for
    ``targeted_occlusion``). Modified keys: ``img``. Added keys: ``distortion``.

    Args:
        distortion: a name from ``fq_det.datasets.distortions.DISTORTIONS`` (or ``ic:*``).
        severity: 1..5.
        seed: base seed; change it to draw another fixed set of distortions.
    """

    def __init__(self, distortion: str, severity: int, seed: int = 0) -> None:
        self.distortion = check_distortion(distortion)
        self.severity = check_severity(severity)
        self.seed = int(seed)

    def transform(self, results: dict) -> dict:
        if 'scale_factor' in results:
            warnings.warn('Distort runs after Resize: the distortion strength then depends on '
                          'the test scale; put it before Resize (see docs/distortions.md)')
        rng = distortion_rng(self.seed, _image_key(results), self.distortion, self.severity)
        return _apply(results, self.distortion, self.severity, rng)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(distortion={self.distortion!r}, '
                f'severity={self.severity}, seed={self.seed})')


@TRANSFORMS.register_module()
class RandomDistort(BaseTransform):
    """Training augmentation: with probability ``prob``, one random distortion.

    The distortion and severity are drawn uniformly from ``distortions`` and
    ``severities`` with numpy's global generator (seeded per worker by mmengine,
    like mmcv's own random transforms).

    Args:
        distortions: names, or ``'all'`` for every distortion that needs no boxes
            (``targeted_occlusion`` must be listed explicitly, after LoadAnnotations).
        severities: severities to draw from (subset of 1..5).
        prob: probability of distorting an image.
    """

    def __init__(self, distortions: Sequence[str] | str = 'all',
                 severities: Sequence[int] = SEVERITIES, prob: float = 0.5) -> None:
        if distortions == 'all':
            distortions = tuple(d for d in DISTORTIONS if not needs_boxes(d))
        elif isinstance(distortions, str):
            distortions = (distortions, )
        self.distortions = tuple(check_distortion(d) for d in distortions)
        self.severities = tuple(check_severity(s) for s in severities)
        if not self.distortions or not self.severities:
            raise ValueError(f'RandomDistort needs at least one distortion and one severity; '
                             f'valid distortions: {", ".join(DISTORTIONS)}; severities: '
                             f'{", ".join(map(str, SEVERITIES))}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        distortion = self.distortions[np.random.randint(len(self.distortions))]
        severity = self.severities[np.random.randint(len(self.severities))]
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        return _apply(results, distortion, severity, rng)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(distortions={self.distortions}, '
                f'severities={self.severities}, prob={self.prob})')
