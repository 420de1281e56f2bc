"""The one route from (image, distortion, severity, seed) to a distorted image.

Everything that distorts images goes through this module, so the detection sweep, the
classification sweep, the moment analysis, the detection grid and the image demo show
the same pixels for the same image, distortion, severity and seed:

* :func:`image_key` names an image the same way everywhere: ``'<img_id>|<file name>'``
  (the folder does not enter, so another machine or data root gives the same key; a
  file ``.../000012.jpg`` read outside a data set gets the id ``000012``, as mmdet's
  VOC data sets name it).
* :func:`distortion_seed` / :func:`distortion_rng`: the per-image generator,
  ``sha256(seed | image key | distortion | severity)`` (independent of
  ``PYTHONHASHSEED``, image order, worker count and process).
* :func:`distort_image`: one image through :func:`~fq_det.datasets.distortions.distort`
  with that generator (what :class:`~fq_det.datasets.transforms.Distort` does in a
  pipeline).
* :func:`insert_distort`: where ``Distort`` goes in a test pipeline, for detection and
  for classification; :func:`distortion_block`: that pipeline up to ``Distort`` (what an
  exported corrupted image holds, :mod:`fq_det.evaluation.corrupted_sets`).
"""
from __future__ import annotations

import copy
import hashlib
import os.path as osp
from typing import Sequence

import numpy as np

from .distortions import check_distortion, check_severity, distort, needs_boxes

__all__ = ['image_key', 'file_image_key', 'stable_seed', 'distortion_seed', 'distortion_rng', 'distort_image',
           'insert_distort', 'distortion_block', 'TASKS']

#: What :func:`insert_distort` inserts for: detection pipelines read image files and load
#: the ground-truth boxes; classification pipelines may hold images in memory, and the
#: whole image is the object (``WholeImageBox``).
TASKS = ('detection', 'classification')


def image_key(img_id=None, img_path: str | None = None) -> str:
    """``'<img_id>|<file name>'``: what identifies an image across machines and runs."""
    if img_id is None and img_path is None:
        raise ValueError('An image needs an img_id or an img_path to seed its distortion '
                         '(in a pipeline: put Distort after LoadImageFromFile)')
    return f'{img_id}|{osp.basename(img_path) if img_path is not None else ""}'


def file_image_key(path: str) -> str:
    """:func:`image_key` of an image file read on its own: id = the file's stem.

    mmdet's VOC data sets give ``JPEGImages/<id>.jpg`` the id ``<id>``, so a VOC image
    gets the same key in the sweep and in the grid or demo.
    """
    return image_key(osp.splitext(osp.basename(str(path)))[0], str(path))


def stable_seed(*parts) -> int:
    """A 128-bit seed from ``parts``: the first 16 bytes of ``sha256('|'.join(map(str, parts)))``.

    Unlike ``hash()``, it does not depend on ``PYTHONHASHSEED``, so dataloader workers
    and later runs agree.
    """
    digest = hashlib.sha256('|'.join(map(str, parts)).encode('utf-8')).digest()
    return int.from_bytes(digest[:16], 'little')


def distortion_seed(seed: int, key: str, distortion: str, severity: int) -> int:
    """The seed of one image's distortion: :func:`stable_seed` of ``(seed, key, distortion, severity)``."""
    return stable_seed(seed, key, distortion, severity)


def distortion_rng(seed: int, key: str, distortion: str, severity: int) -> np.random.Generator:
    """The generator that distorts the image named ``key`` (see :func:`image_key`)."""
    return np.random.default_rng(distortion_seed(seed, key, distortion, severity))


def distort_image(image: np.ndarray, distortion: str, severity: int, seed: int, key: str,
                  boxes: np.ndarray | None = None) -> np.ndarray:
    """``image`` distorted exactly as the sweeps distort the image named ``key``."""
    return distort(image, distortion, severity, distortion_rng(seed, key, distortion, severity),
                   boxes=boxes)


# --------------------------------------------------------------------- pipelines
def _type_name(transform: dict) -> str:
    t = transform.get('type', '')
    return (t if isinstance(t, str) else getattr(t, '__name__', str(t))).split('.')[-1]


def _insert_at(pipeline: Sequence[dict], task: str) -> int:
    """Index after the leading block of ``Load*`` transforms that starts with the first
    ``LoadImage*`` (0 for a classification pipeline without one)."""
    names = [_type_name(t) for t in pipeline]
    starts = [i for i, n in enumerate(names) if n.startswith('LoadImage')]
    if not starts and task == 'detection':
        raise ValueError(f'The test pipeline has no LoadImage* transform to insert Distort '
                         f'after; its transforms are: {", ".join(names)}')
    end = starts[0] + 1 if starts else 0
    while starts and end < len(names) and names[end].startswith('Load'):
        end += 1
    return end


def insert_distort(pipeline: Sequence[dict], distortion: str, severity: int, seed: int = 0,
                   task: str = 'detection') -> list[dict]:
    """A copy of ``pipeline`` with ``Distort`` right after the image-loading transforms.

    ``Distort`` goes after the leading block of ``Load*`` transforms that starts with
    the first ``LoadImage*``, so the image is distorted at its original resolution,
    before any resize or crop.

    Detection (``task='detection'``): the pipeline must load images from files. If the
    distortion needs boxes and no ``LoadAnnotations`` is in that block (mmdet's VOC/COCO
    test pipelines load annotations after ``Resize``, to evaluate in original
    coordinates), a box-only copy of the pipeline's ``LoadAnnotations`` (and of a
    ``ClipGtBoxes`` right after it) is inserted before ``Distort``; the later one reloads
    the annotations after ``Resize`` as before.

    Classification (``task='classification'``): without a ``LoadImage*`` transform (data
    sets that hold their images in memory) ``Distort`` goes first; when the distortion
    needs boxes, ``WholeImageBox`` (the whole image is the object) precedes it.
    """
    if task not in TASKS:
        raise ValueError(f'Unknown task {task!r}; valid choices: {", ".join(TASKS)}')
    distortion, severity = check_distortion(distortion), check_severity(severity)
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    names = [_type_name(t) for t in pipeline]
    end = _insert_at(pipeline, task)
    starts = [i for i, n in enumerate(names) if n.startswith('LoadImage')]
    new = [dict(type='mmdet.Distort', distortion=distortion, severity=severity, seed=int(seed))]
    if needs_boxes(distortion) and task == 'classification':
        new.insert(0, dict(type='mmdet.WholeImageBox'))
    elif needs_boxes(distortion) and 'LoadAnnotations' not in names[starts[0]:end]:
        at = names.index('LoadAnnotations') if 'LoadAnnotations' in names else None
        load_ann = copy.deepcopy(pipeline[at]) if at is not None else \
            dict(type='mmdet.LoadAnnotations')
        load_ann.update(with_bbox=True, with_mask=False, with_seg=False)
        block = [load_ann]
        if at is not None and at + 1 < len(names) and names[at + 1] == 'ClipGtBoxes':
            block.append(copy.deepcopy(pipeline[at + 1]))
        new[0:0] = block
    pipeline[end:end] = new
    return pipeline


def distortion_block(pipeline: Sequence[dict], distortion: str | None, severity: int = 1,
                     seed: int = 0) -> list[dict]:
    """The transforms of :func:`insert_distort`'s detection pipeline up to and including
    ``Distort``.

    Their output is the distorted image at its original resolution, before any resize:
    what the sweep's pipeline holds right after ``Distort``, and what an exported
    corrupted set stores. ``distortion=None``: the clean pipeline's leading ``Load*``
    block, where ``Distort`` would go (the transforms an exported image stands for).
    """
    if distortion is None:
        return [copy.deepcopy(dict(t)) for t in pipeline[:_insert_at(pipeline, 'detection')]]
    block = insert_distort(pipeline, distortion, severity, seed)
    at = [_type_name(t) for t in block].index('Distort')
    return block[:at + 1]
