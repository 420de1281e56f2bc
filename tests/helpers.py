"""Small helpers shared by test modules; import them as ``from helpers import ...`` (pytest
puts tests/, the folder of conftest.py, on ``sys.path``; a ``tests`` package installed by a
dependency can shadow ``tests.helpers``, never ``helpers``)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_script(rel: str) -> ModuleType:
    """Import a command-line script of the repo (``tools/...py``) as a module."""
    spec = importlib.util.spec_from_file_location(Path(rel).stem, REPO / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mmdet_voc_faster_rcnn_config() -> str:
    """Path of MMDetection's own VOC Faster R-CNN config file (inside the mmdet package)."""
    import mmdet
    return str(Path(mmdet.__file__).parent / '.mim' / 'configs' / 'pascal_voc'
               / 'faster-rcnn_r50_fpn_1x_voc0712.py')


def read_png(path: Path) -> np.ndarray:
    """The image at ``path`` as a BGR array; fails the test if it is not readable."""
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f'{path} is not a readable image'
    return img
