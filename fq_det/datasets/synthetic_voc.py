"""A deterministic synthetic data set in the Pascal VOC layout (the project's embedded
default), or in the COCO layout.

``make_synthetic_voc(out_dir, num_train, num_test, seed, image_size)`` writes::

    out_dir/VOC2007/JPEGImages/<id>.jpg
    out_dir/VOC2007/Annotations/<id>.xml          (size, object/name/pose/truncated/difficult/bndbox)
    out_dir/VOC2007/ImageSets/Main/trainval.txt
    out_dir/VOC2007/ImageSets/Main/test.txt

so that MMDetection's own ``VOCDataset`` (with ``metainfo=dict(classes=SYNTH_CLASSES)``)
and ``VOCMetric`` read it unchanged. Each image holds 1-5 filled shapes of the classes
in :data:`SYNTH_CLASSES`, with random size, colour, rotation and mutual overlap, on a
textured background (smooth colour gradient + low-frequency blobs + pixel noise + thin
distractor lines), so that distortions have a measurable effect on detection.

Annotation rules (as in VOC): boxes are 1-based inclusive pixel coordinates of the
object's visible extent; ``truncated=1`` when the shape is cut by the image border;
``difficult=1`` when the object is tiny (shorter box side < 10 px) or more than 50 %
of it is hidden by objects drawn on top of it.

``make_synthetic_coco(out_dir, ...)`` writes the same images and objects in the COCO
layout, for MMDetection's ``CocoDataset`` and ``CocoMetric``::

    out_dir/annotations/instances_trainval.json   (images, annotations, categories)
    out_dir/annotations/instances_test.json
    out_dir/trainval/<id>.jpg
    out_dir/test/<id>.jpg

with image ids ``int(<id>)``, category ids 1..5 in :data:`SYNTH_CLASSES` order, boxes
``[x, y, w, h]`` in 0-based pixels covering the same pixels as the VOC box (mmdet reads
the VOC box ``x0..x1`` as ``[x0, y0, x1, y1]``, widths ``+ 1`` in VOCMetric's legacy
convention, and the COCO box as ``[x0, y0, x1 + 1, y1 + 1]``), ``area`` the object's visible pixel count, and VOC's
``difficult`` objects as ``iscrowd=1`` (COCO's way to make a ground-truth region
ignored by the evaluation; ``CocoDataset`` sets their ``ignore_flag``).

Determinism: image ``i`` of a split is drawn from ``numpy.random.default_rng((seed,
split, i))`` so the same seed gives byte-identical files, and an image's content does not depend on
the other split's size (ids are numbered consecutively: trainval first, then test).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

SYNTH_CLASSES: tuple[str, ...] = ('circle', 'square', 'triangle', 'cross', 'star')
"""Class names: shapes distinguishable by form (colour is random, never a class cue)."""

SYNTH_PALETTE: list[tuple[int, int, int]] = [(220, 20, 60), (0, 130, 200), (60, 180, 75),
                                             (245, 130, 48), (145, 30, 180)]
"""One RGB colour per class, for MMDetection's visualizer (``metainfo['palette']``)."""

_SPLITS = {'trainval': 0, 'test': 1}
_MIN_SIDE_DIFFICULT = 10  # px: shorter box side below this -> difficult
_MAX_HIDDEN = 0.5  # fraction of the shape covered by later shapes -> difficult
_JPEG_QUALITY = 95
_SIZE_RANGE = (0.2, 0.55)  # object size as a fraction of the image's short side
_MAX_OBJECTS = 5


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Textured, noisy background (float32 HxWx3 in [0, 255])."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(40, 215, size=(2, 3)).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    t = (np.cos(theta) * xx / w + np.sin(theta) * yy / h)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    # Low-frequency blobs: upsampled coarse noise.
    coarse = rng.normal(0, 14, size=(max(2, h // 24), max(2, w // 24), 3)).astype(np.float32)
    img += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    # Thin distractor lines and arcs.
    canvas = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(float(v) for v in rng.uniform(-50, 50, size=3))
        cv2.line(canvas, p0, p1, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    img += canvas
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def _shape_mask(rng: np.random.Generator, cls: str, w: int, h: int, cx: float, cy: float,
                size: float) -> np.ndarray:
    """Binary mask (uint8 HxW) of one shape of class ``cls`` centred at (cx, cy)."""
    mask = np.zeros((h, w), np.uint8)
    r = size / 2
    angle = rng.uniform(0, 2 * np.pi)
    shift = 4  # sub-pixel precision for cv2 polygons
    scale = 1 << shift

    def poly(points: np.ndarray) -> None:
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = points @ rot.T + np.array([cx, cy])
        cv2.fillPoly(mask, [np.round(pts * scale).astype(np.int32)], 1, cv2.LINE_8, shift)

    if cls == 'circle':
        aspect = rng.uniform(0.8, 1.0)
        cv2.ellipse(mask, (int(round(cx * scale)), int(round(cy * scale))),
                    (int(round(r * scale)), int(round(r * aspect * scale))),
                    float(np.degrees(angle)), 0, 360, 1, -1, cv2.LINE_8, shift)
    elif cls == 'square':
        a = rng.uniform(0.75, 1.0)
        poly(np.array([[-r, -r * a], [r, -r * a], [r, r * a], [-r, r * a]]) * 0.85)
    elif cls == 'triangle':
        k = np.arange(3) * 2 * np.pi / 3
        poly(np.stack([np.sin(k), -np.cos(k)], 1) * r)
    elif cls == 'cross':
        t = r * rng.uniform(0.28, 0.4)
        poly(np.array([[-t, -r], [t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r], [-t, r],
                       [-t, t], [-r, t], [-r, -t], [-t, -t]]))
    elif cls == 'star':
        k = np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
        poly(np.stack([np.sin(k) * rad, -np.cos(k) * rad], 1))
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(f'unknown class {cls!r}; valid: {SYNTH_CLASSES}')
    return mask


def _fill(rng: np.random.Generator, h: int, w: int, background_mean: np.ndarray) -> np.ndarray:
    """Object texture: a saturated colour far from the background, a light pattern, noise."""
    for _ in range(20):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(120, 256), rng.integers(90, 256)]]])
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
        if np.abs(colour - background_mean).sum() > 120:
            break
    tex = np.broadcast_to(colour, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    freq = rng.uniform(0.15, 0.5)
    phase = rng.uniform(0, 2 * np.pi)
    tex += (18 * np.sin(freq * (xx * np.cos(phase) + yy * np.sin(phase))))[..., None]
    tex += rng.normal(0, 6, size=tex.shape).astype(np.float32)
    return tex


def _render(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, list[dict]]:
    """One image (uint8 HxWx3 RGB) and its objects (name, 1-based bbox, flags)."""
    img = _background(rng, w, h)
    short = min(w, h)
    num = int(rng.integers(1, _MAX_OBJECTS + 1))
    masks, names, truncs = [], [], []
    for _ in range(num):
        cls = SYNTH_CLASSES[int(rng.integers(len(SYNTH_CLASSES)))]
        size = float(short * rng.uniform(*_SIZE_RANGE))
        # Centres may lie near the border, so some objects are truncated.
        cx = float(rng.uniform(0.15 * size, w - 0.15 * size))
        cy = float(rng.uniform(0.15 * size, h - 0.15 * size))
        mask = _shape_mask(rng, cls, w, h, cx, cy, size)
        if mask.sum() < 16:
            continue
        inside = (size / 2 <= cx <= w - size / 2) and (size / 2 <= cy <= h - size / 2)
        region = mask.astype(bool)
        tex = _fill(rng, h, w, img[region].mean(0))
        soft = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)[..., None]
        img = img * (1 - soft) + tex * soft
        masks.append(region)
        names.append(cls)
        truncs.append(not inside and bool(region[0].any() or region[-1].any()
                                          or region[:, 0].any() or region[:, -1].any()))
    objects = []
    covered = np.zeros((h, w), bool)
    for region, cls, trunc in reversed(list(zip(masks, names, truncs))):  # topmost first
        visible = region & ~covered
        hidden = 1.0 - visible.sum() / region.sum()
        covered |= region
        if not visible.any():
            continue
        ys, xs = np.nonzero(visible)
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
        difficult = (min(x1 - x0, y1 - y0) + 1 < _MIN_SIDE_DIFFICULT) or hidden > _MAX_HIDDEN
        objects.append(dict(name=cls, bbox=(x0 + 1, y0 + 1, x1 + 1, y1 + 1),
                            truncated=int(trunc), difficult=int(difficult),
                            area=int(visible.sum())))
    objects.reverse()
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects


def _write_xml(path: Path, filename: str, w: int, h: int, objects: list[dict]) -> None:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = filename
    source = ET.SubElement(root, 'source')
    ET.SubElement(source, 'database').text = 'fq-det synthetic VOC'
    size = ET.SubElement(root, 'size')
    for tag, value in (('width', w), ('height', h), ('depth', 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, 'segmented').text = '0'
    for obj in objects:
        node = ET.SubElement(root, 'object')
        ET.SubElement(node, 'name').text = obj['name']
        ET.SubElement(node, 'pose').text = 'Unspecified'
        ET.SubElement(node, 'truncated').text = str(obj['truncated'])
        ET.SubElement(node, 'difficult').text = str(obj['difficult'])
        box = ET.SubElement(node, 'bndbox')
        for tag, value in zip(('xmin', 'ymin', 'xmax', 'ymax'), obj['bbox']):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding='utf-8')


def _write_image(job: tuple) -> tuple[str, list[dict]]:
    """Render and write one image (and its XML in the VOC layout); a picklable unit of
    work for ``workers``. Returns the id and the objects."""
    layout, folder, img_id, seed, split, i, w, h = job
    rng = np.random.default_rng((int(seed), _SPLITS[split], i))
    image, objects = _render(rng, w, h)
    img_dir = folder / 'JPEGImages' if layout == 'voc' else folder / split
    cv2.imwrite(str(img_dir / f'{img_id}.jpg'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if layout == 'voc':
        _write_xml(folder / 'Annotations' / f'{img_id}.xml', f'{img_id}.jpg', w, h, objects)
    return img_id, objects


def _coco_json(split: str, drawn: list[tuple[str, list[dict]]], w: int, h: int) -> dict:
    """The COCO annotation file of one split (see the module docstring)."""
    images, annotations = [], []
    for img_id, objects in drawn:
        images.append(dict(id=int(img_id), file_name=f'{img_id}.jpg', width=w, height=h))
        for obj in objects:
            x0, y0, x1, y1 = obj['bbox']  # VOC: 1-based, inclusive
            annotations.append(dict(
                id=len(annotations) + 1, image_id=int(img_id),
                category_id=SYNTH_CLASSES.index(obj['name']) + 1,
                bbox=[x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1], area=obj['area'],
                iscrowd=obj['difficult'], truncated=obj['truncated']))
    return dict(info=dict(description=f'fq-det synthetic set, {split} split'), images=images,
                annotations=annotations,
                categories=[dict(id=k + 1, name=c) for k, c in enumerate(SYNTH_CLASSES)])


def _draw_all(jobs: list[tuple], workers: int) -> dict[str, list[dict]]:
    """Run the jobs (``workers`` processes); ``{img_id: objects}``."""
    if workers == 1:
        return dict(map(_write_image, jobs))
    import multiprocessing as mp
    # fork: the workers need only this module (spawn would re-import the whole package)
    method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
    with mp.get_context(method).Pool(min(workers, len(jobs))) as pool:
        return dict(pool.imap_unordered(_write_image, jobs, chunksize=16))


def _split_jobs(layout: str, folder: Path, num_train: int, num_test: int, seed: int,
                image_size: Sequence[int], workers: int) -> dict[str, list[tuple]]:
    """Check the arguments; the jobs of each split (ids numbered trainval first)."""
    if int(num_train) < 1 or int(num_test) < 1:
        raise ValueError(f'num_train and num_test must be >= 1, got {num_train}, {num_test}')
    if len(image_size) != 2 or min(int(v) for v in image_size) < 32:
        raise ValueError(f'image_size must be (W, H) with both >= 32, got {image_size!r}')
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers must be an int >= 1, got {workers!r}')
    w, h = int(image_size[0]), int(image_size[1])
    jobs, offset = {}, 0
    for split, count in (('trainval', int(num_train)), ('test', int(num_test))):
        jobs[split] = [(layout, folder, f'{offset + i + 1:06d}', seed, split, i, w, h)
                       for i in range(count)]
        offset += count
    return jobs


def make_synthetic_voc(out_dir: str | Path, num_train: int, num_test: int, seed: int = 0,
                       image_size: Sequence[int] = (320, 240), workers: int = 1) -> Path:
    """Write a synthetic VOC2007-layout data set under ``out_dir/VOC2007``; return ``out_dir``.

    Args:
        out_dir: data root (what a config's ``data_root`` points at).
        num_train: images in ``ImageSets/Main/trainval.txt`` (>= 1).
        num_test: images in ``ImageSets/Main/test.txt`` (>= 1).
        seed: the same seed gives byte-identical files.
        image_size: ``(W, H)`` in pixels, each >= 32.
        workers: processes drawing the images (the files are the same for any number).
    """
    root = Path(out_dir)
    voc = root / 'VOC2007'
    jobs = _split_jobs('voc', voc, num_train, num_test, seed, image_size, workers)
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    _draw_all([job for split_jobs in jobs.values() for job in split_jobs], workers)
    for split, split_jobs in jobs.items():
        ids = [job[2] for job in split_jobs]
        (voc / 'ImageSets' / 'Main' / f'{split}.txt').write_text('\n'.join(ids) + '\n')
    return root


def make_synthetic_coco(out_dir: str | Path, num_train: int, num_test: int, seed: int = 0,
                        image_size: Sequence[int] = (320, 240), workers: int = 1) -> Path:
    """The same data set as :func:`make_synthetic_voc` (same seed: the same images and
    objects) in the COCO layout under ``out_dir``; return ``out_dir``.

    Arguments as :func:`make_synthetic_voc`; the files are in the module docstring.
    """
    import json
    root = Path(out_dir)
    jobs = _split_jobs('coco', root, num_train, num_test, seed, image_size, workers)
    for sub in ('annotations', *jobs):
        (root / sub).mkdir(parents=True, exist_ok=True)
    drawn = _draw_all([job for split_jobs in jobs.values() for job in split_jobs], workers)
    w, h = int(image_size[0]), int(image_size[1])
    for split, split_jobs in jobs.items():
        data = _coco_json(split, [(job[2], drawn[job[2]]) for job in split_jobs], w, h)
        (root / 'annotations' / f'instances_{split}.json').write_text(json.dumps(data, indent=1))
    return root
