"""Detections on clean and distorted images in one grid (the supplement's Figure 4).

A row per image, a column per condition ``(distortion, severity)``; ``('clean', 0)``
is the original image. Boxes, class names and scores are drawn by MMDetection's own
``DetLocalVisualizer``; inference runs through ``mmdet.apis.inference_detector``.
Images are distorted through :mod:`fq_det.datasets.distortion_route`, seeded by (seed,
image key, distortion, severity) as in the robustness sweep, so a cell shows exactly
the image the sweep evaluated. ``targeted_occlusion`` occludes the given ground-truth
boxes (``boxes``, e.g. from :func:`read_voc_boxes`), or, when ``allow_detection_boxes``
is set, the clean image's detections above ``score_thr``.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from fq_det.datasets.voc_xml import read_voc_boxes  # noqa: F401  (part of this module's API)

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

CLEAN = ('clean', 0)


def check_conditions(conditions: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Validate ``(distortion, severity)`` pairs; ``('clean', 0)`` is the original."""
    from fq_det.datasets.distortions import check_distortion, check_severity
    if not conditions:
        raise ValueError("conditions is empty; give e.g. [('clean', 0), ('jpeg', 5)]")
    out = []
    for cond in conditions:
        if not (isinstance(cond, (tuple, list)) and len(cond) == 2):
            raise ValueError(f'a condition is a (distortion, severity) pair, got {cond!r}')
        name, sev = cond
        if name == CLEAN[0]:
            out.append(CLEAN)
            continue
        out.append((check_distortion(name), check_severity(sev)))
    return out


def condition_title(cond: tuple[str, int]) -> str:
    return 'original' if cond[0] == CLEAN[0] else f'{cond[0].replace("_", " ")} s{cond[1]}'


def _predictions(sample, score_thr: float, classes: Sequence[str]) -> list[dict]:
    pred = sample.pred_instances
    keep = pred.scores > score_thr  # as DetLocalVisualizer: strictly above
    out = []
    for box, label, score in zip(pred.bboxes[keep].tolist(), pred.labels[keep].tolist(),
                                 pred.scores[keep].tolist()):
        name = classes[label] if label < len(classes) else str(label)
        out.append(dict(bbox=[round(v, 2) for v in box], label=int(label), class_name=name,
                        score=round(float(score), 4)))
    return out


def draw_detection_grid(model, image_paths: Sequence[str | Path],
                        conditions: Sequence[tuple[str, int]], out_file: str | Path,
                        score_thr: float = 0.3, *, seed: int = 0,
                        boxes: Mapping[str, np.ndarray] | None = None,
                        allow_detection_boxes: bool = True,
                        cell_px: int = 320, dpi: int = 100, progress: bool = True) -> dict:
    """Draw ``model``'s detections for every image (rows) and condition (columns).

    Args:
        model: a detector from ``mmdet.apis.init_detector``.
        image_paths: image files, one row each.
        conditions: ``(distortion, severity)`` columns; ``('clean', 0)`` = original.
        out_file: PNG path; ``<stem>.json`` beside it lists the drawn detections.
        score_thr: only detections scoring above it are drawn and listed.
        seed: distortion seed (per image and condition, deterministic).
        boxes: optional ``{image path: (K, 4) xyxy}`` ground truth for targeted occlusion.
        allow_detection_boxes: for an image without ``boxes``, occlude the clean
            detections; if False, a targeted occlusion column without boxes is an error.
        cell_px: width of one cell in pixels (height follows the first image's aspect).

    Returns ``{'figure': Path, 'json': Path, 'size': (width, height)}``.
    """
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.utils import ProgressBar

    conditions, boxes = _check_grid_args(image_paths, conditions, score_thr, cell_px, boxes,
                                         allow_detection_boxes)
    classes = tuple((getattr(model, 'dataset_meta', None) or {}).get('classes', ()))
    visualizer = DetLocalVisualizer(name=f'fq_det_grid_{id(model)}_{zlib.crc32(str(out_file).encode())}')
    visualizer.dataset_meta = model.dataset_meta
    images = _read_images(image_paths)

    bar = ProgressBar(len(images) * len(conditions)) if progress else None
    cells, records = [], []
    for path, img in zip(image_paths, images):
        row, row_records = _grid_row(model, visualizer, path, img, conditions, score_thr, seed,
                                     classes, boxes, bar)
        cells.append(row)
        records += row_records

    out = Path(out_file)
    size = _save_grid(cells, [Path(p).name for p in image_paths],
                      [condition_title(c) for c in conditions], out, cell_px, dpi)
    json_path = out.with_suffix('.json')
    json_path.write_text(json.dumps(dict(score_thr=score_thr, seed=seed, results=records), indent=1))
    return {'figure': out, 'json': json_path, 'size': size}


def _check_grid_args(image_paths: Sequence[str | Path], conditions: Sequence[tuple[str, int]],
                     score_thr: float, cell_px: int, boxes: Mapping[str, np.ndarray] | None,
                     allow_detection_boxes: bool
                     ) -> tuple[list[tuple[str, int]], dict[str, np.ndarray]]:
    """Check :func:`draw_detection_grid`'s arguments; the checked conditions and the
    ground-truth boxes keyed by path."""
    from fq_det.datasets.distortions import needs_boxes
    if not image_paths:
        raise ValueError('no images given')
    conditions = check_conditions(conditions)
    if not 0.0 <= score_thr <= 1.0:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    if int(cell_px) < 1:
        raise ValueError(f'cell_px must be a positive number of pixels, got {cell_px}')
    boxes = {str(k): v for k, v in (boxes or {}).items()}
    if not allow_detection_boxes and any(needs_boxes(n) for n, _ in conditions):
        lacking = [str(p) for p in image_paths if str(p) not in boxes]
        if lacking:
            raise ValueError(f'targeted_occlusion needs ground-truth boxes; none given for: '
                             f'{", ".join(lacking)}')
    return conditions, boxes


def _read_images(image_paths: Sequence[str | Path]) -> list[np.ndarray]:
    """Every image as BGR uint8; a file OpenCV cannot read is an error naming it."""
    images = []
    for p in image_paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f'cannot read image {p}')
        images.append(img)
    return images


def _grid_row(model, visualizer, path: str | Path, img: np.ndarray,
              conditions: list[tuple[str, int]], score_thr: float, seed: int,
              classes: Sequence[str], boxes: Mapping[str, np.ndarray],
              bar) -> tuple[list[np.ndarray], list[dict]]:
    """One image's cells (the drawn detections per condition) and their JSON records.

    Targeted occlusion hides ``boxes[path]`` when given, else the clean image's detections."""
    from mmdet.apis import inference_detector

    from fq_det.datasets.distortion_route import distort_image, file_image_key
    from fq_det.datasets.distortions import needs_boxes

    clean_sample = inference_detector(model, img)
    clean_dets = _predictions(clean_sample, score_thr, classes)
    if str(path) in boxes:
        occ_boxes, occ_src = np.asarray(boxes[str(path)], float).reshape(-1, 4), 'annotations'
    else:
        occ_boxes = np.asarray([d['bbox'] for d in clean_dets], float).reshape(-1, 4)
        occ_src = 'clean detections'
    row, records = [], []
    for name, sev in conditions:
        if (name, sev) == CLEAN:
            shown, sample, dets = img, clean_sample, clean_dets
        else:
            shown = distort_image(img, name, sev, seed, file_image_key(path),
                                  boxes=occ_boxes if needs_boxes(name) else None)
            sample = inference_detector(model, shown)
            dets = _predictions(sample, score_thr, classes)
        visualizer.add_datasample(Path(path).name, shown[..., ::-1].copy(), sample,
                                  draw_gt=False, pred_score_thr=score_thr)
        row.append(visualizer.get_image())
        rec = dict(image=str(path), distortion=name, severity=sev, detections=dets)
        if needs_boxes(name):
            rec['occlusion_boxes_from'] = occ_src
        records.append(rec)
        if bar:
            bar.update()
    return row, records


def _save_grid(cells: list[list[np.ndarray]], row_names: list[str], col_names: list[str],
               out: Path, cell_px: int, dpi: int) -> tuple[int, int]:
    """Lay the RGB cells out with matplotlib: titles on top, image names on the left."""
    nrows, ncols = len(cells), len(cells[0])
    h0, w0 = cells[0][0].shape[:2]
    cell_w = cell_px / dpi
    cell_h = cell_w * h0 / w0
    title_h, label_w = 0.3, 0.25  # inches
    fig_w, fig_h = label_w + ncols * cell_w, title_h + nrows * cell_h
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            ax = fig.add_axes(((label_w + c * cell_w) / fig_w, 1 - (title_h + (r + 1) * cell_h) / fig_h,
                               cell_w / fig_w, cell_h / fig_h))
            ax.imshow(cell, interpolation='bilinear')
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_names[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return int(round(fig_w * dpi)), int(round(fig_h * dpi))
