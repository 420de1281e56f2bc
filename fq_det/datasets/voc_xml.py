"""Pascal VOC annotation files: read them, and give their boxes as mmdet's VOC data sets do.

One reader for the data check and the detection grid, with errors that name the file.
Boxes in the XML are 1-based and inclusive; :func:`mmdet_box` converts them exactly as
mmdet's ``XMLDataset`` does (``int(float(v)) - 1`` for all four), so the grid occludes
the same pixels as the sweep.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ['VOCAnnotationError', 'VOCObject', 'parse_voc_xml', 'mmdet_box', 'read_voc_boxes']

_BOX_KEYS = ('xmin', 'ymin', 'xmax', 'ymax')


class VOCAnnotationError(ValueError):
    """An annotation file that cannot be read as Pascal VOC XML."""


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>``: class name, XML box (1-based, inclusive) and the difficult flag."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool


def parse_voc_xml(path: str | Path) -> tuple[tuple[int, int] | None, list[VOCObject]]:
    """``((width, height) or None, objects)`` of a VOC annotation file.

    Raises :class:`VOCAnnotationError` naming the file (and the object index) when the
    XML is malformed or an object lacks its name or a numeric box coordinate.
    """
    try:
        root = ET.parse(str(path)).getroot()
    except (ET.ParseError, OSError) as err:
        raise VOCAnnotationError(f'{path}: not a readable VOC annotation file ({err})') from None
    size = None
    node = root.find('size')
    if node is not None and node.find('width') is not None and node.find('height') is not None:
        try:
            size = (int(float(node.find('width').text)), int(float(node.find('height').text)))
        except (TypeError, ValueError):
            raise VOCAnnotationError(f'{path}: <size> has no numeric width/height') from None
    objects = []
    for i, obj in enumerate(root.findall('object')):
        name, bndbox = obj.find('name'), obj.find('bndbox')
        if name is None or not (name.text or '').strip() or bndbox is None:
            raise VOCAnnotationError(f'{path}: object {i} lacks <name> or <bndbox>')
        try:
            box = tuple(float(bndbox.find(k).text) for k in _BOX_KEYS)
        except (AttributeError, TypeError, ValueError):
            raise VOCAnnotationError(f'{path}: object {i} ({name.text.strip()}) has no numeric '
                                     f'{"/".join(_BOX_KEYS)}') from None
        bad = [f'{k}={v:g}' for k, v in zip(_BOX_KEYS, box) if not math.isfinite(v)]
        if bad:
            raise VOCAnnotationError(f'{path}: object {i} ({name.text.strip()}) has a coordinate '
                                     f'that is not a finite number: {", ".join(bad)}')
        difficult = obj.find('difficult')
        try:
            hard = bool(int(difficult.text)) if difficult is not None and difficult.text else False
        except ValueError:
            raise VOCAnnotationError(f'{path}: object {i} has a non-integer <difficult>') from None
        objects.append(VOCObject(name.text.strip(), box, hard))
    return size, objects


def mmdet_box(box: tuple[float, float, float, float]) -> list[int]:
    """An XML box as mmdet's ``XMLDataset`` loads it: ``int(float(v)) - 1``."""
    return [int(v) - 1 for v in box]


def read_voc_boxes(xml_file: str | Path) -> np.ndarray:
    """Boxes ``(K, 4)`` xyxy of a VOC annotation file, as mmdet's VOC data sets give them."""
    _, objects = parse_voc_xml(xml_file)
    return np.asarray([mmdet_box(o.box) for o in objects], dtype=np.float64).reshape(-1, 4)
