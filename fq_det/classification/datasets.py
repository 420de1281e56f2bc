"""Classification data sets (registered in mmdet's DATASETS), returning mmengine-style dicts.

Every sample dict carries ``gt_label`` (int), ``sample_idx`` and an image id ``img_id``
(used to seed per-image distortions); in-memory sets also carry ``img`` (uint8 HxWx3, BGR
like mmcv's loader), ``img_shape`` and ``ori_shape``; the folder set carries ``img_path``
for ``LoadImageFromFile``. So the usual mmcv/mmdet transforms and fq_det's ``Distort`` run
on them, ending with ``PackClsInputs``.

* :class:`CIFARClsDataset`: CIFAR-10/100 in torchvision's on-disk format, never downloaded.
* :class:`ImageFolderClsDataset`: ``<data_root>/<data_prefix>/<class>/<image>`` (ImageNet style).
* :class:`SyntheticClsDataset`: a generated, deterministic 32x32 shapes/textures set.
* :class:`VOCObjectCropsDataset`: the annotated objects of a VOC-layout detection set, each
  cropped (square, with context) and resized: backbone pretraining for the detectors.
"""
from __future__ import annotations

import io
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from mmengine.dataset import BaseDataset

from mmdet.registry import DATASETS

from fq_det.datasets.data_check import DataNotFoundError

CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                   'truck')
SYNTH_CLS_CLASSES = ('disc', 'square', 'triangle', 'cross', 'ring', 'h_stripes', 'v_stripes',
                     'checker', 'diag_stripes', 'dots')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')

_CIFAR_LAYOUT = {
    10:
    dict(
        folder='cifar-10-batches-py',
        train=[f'data_batch_{i}' for i in range(1, 6)],
        test=['test_batch'],
        meta='batches.meta',
        label_key='labels',
        names_key='label_names',
        archive='cifar-10-python.tar.gz'),
    100:
    dict(
        folder='cifar-100-python',
        train=['train'],
        test=['test'],
        meta='meta',
        label_key='fine_labels',
        names_key='fine_label_names',
        archive='cifar-100-python.tar.gz'),
}


class DataFolderNotFoundError(DataNotFoundError):
    """A data set folder or file is missing; the message names it and the expected layout."""


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays (CIFAR batches hold dicts, lists, bytes, arrays)."""

    _ALLOWED = {('numpy.core.multiarray', '_reconstruct'),
                ('numpy._core.multiarray', '_reconstruct'), ('numpy', 'ndarray'),
                ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'),
                ('numpy._core.multiarray', 'scalar')}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'refusing to load {module}.{name} from a CIFAR file')


def _load_cifar_file(path: Path) -> dict:
    with open(path, 'rb') as f:
        data = _SafeUnpickler(io.BytesIO(f.read()), encoding='latin1').load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


class _InMemoryClsDataset(BaseDataset):
    """Shared part of the in-memory sets: images live in ``self.images`` (N, H, W, 3) uint8."""

    images: np.ndarray

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        img = self.images[info['img_index']].copy()
        info.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return info

    def _make_data_list(self, labels: Sequence[int], prefix: str) -> list[dict]:
        return [
            dict(img_index=i, gt_label=int(y), img_id=f'{prefix}_{i:06d}')
            for i, y in enumerate(labels)
        ]


@DATASETS.register_module()
class CIFARClsDataset(_InMemoryClsDataset):
    """CIFAR-10 or CIFAR-100 from the python batches torchvision extracts.

    ``data_root`` is the folder that *contains* ``cifar-10-batches-py/`` (or
    ``cifar-100-python/``), as torchvision's ``root``. Files are never downloaded; a missing
    folder or file raises :class:`DataFolderNotFoundError` naming what is expected.
    Images are converted to BGR, like images read by mmcv.

    Args:
        num_classes: 10 or 100.
        split: 'train' or 'test'.
    """

    def __init__(self,
                 data_root: str,
                 num_classes: int = 10,
                 split: str = 'train',
                 **kwargs) -> None:
        if num_classes not in _CIFAR_LAYOUT:
            raise ValueError(f'num_classes must be 10 or 100 for CIFAR, got {num_classes}')
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got '{split}'")
        self.num_classes, self.split = num_classes, split
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        layout = _CIFAR_LAYOUT[self.num_classes]
        folder = Path(self.data_root) / layout['folder']
        needed = layout[self.split] + [layout['meta']]
        missing = [name for name in needed if not (folder / name).is_file()]
        if missing:
            raise DataFolderNotFoundError(
                f"CIFAR-{self.num_classes} {self.split} data not found: folder '{folder}' "
                f"{'lacks ' + ', '.join(missing) if folder.is_dir() else 'does not exist'}. "
                f"Expected torchvision's layout {layout['folder']}/{{{', '.join(needed)}}} "
                f"(extract {layout['archive']} into '{self.data_root}'); "
                'fq-det never downloads data.'
            )
        images, labels = [], []
        for name in layout[self.split]:
            batch = _load_cifar_file(folder / name)
            images.append(np.asarray(batch['data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(y) for y in batch[layout['label_key']])
        # (N, 3, 32, 32) RGB -> (N, 32, 32, 3) BGR
        self.images = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1)[..., ::-1])
        meta = _load_cifar_file(folder / layout['meta'])
        self._metainfo['classes'] = tuple(meta[layout['names_key']])
        return self._make_data_list(labels, f'cifar{self.num_classes}_{self.split}')


@DATASETS.register_module()
class ImageFolderClsDataset(BaseDataset):
    """ImageNet-style folder: ``<data_root>/<data_prefix['img_path']>/<class_name>/<image>``.

    Classes are the sorted sub-folder names unless ``metainfo=dict(classes=...)`` fixes
    them (then other sub-folders are ignored). The pipeline must start with
    ``LoadImageFromFile``.
    """

    def __init__(self, data_root: str = '', data_prefix: dict | None = None, **kwargs) -> None:
        super().__init__(
            data_root=data_root, data_prefix=data_prefix or dict(img_path=''), **kwargs)

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_prefix['img_path'])
        if not root.is_dir():
            raise DataFolderNotFoundError(
                f"image folder '{root}' does not exist. Expected an ImageNet-style layout "
                f"'{root}/<class_name>/<image>{{{','.join(IMAGE_EXTENSIONS)}}}'.")
        classes = self._metainfo.get('classes') or tuple(
            sorted(p.name for p in root.iterdir() if p.is_dir()))
        if not classes:
            raise DataFolderNotFoundError(f"image folder '{root}' has no class sub-folders "
                                          f"('{root}/<class_name>/<image>' expected).")
        self._metainfo['classes'] = tuple(classes)
        data_list = []
        for label, name in enumerate(classes):
            for path in sorted((root / name).rglob('*')):
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    data_list.append(
                        dict(
                            img_path=str(path), gt_label=label, img_id=str(path.relative_to(root))))
        if not data_list:
            raise DataFolderNotFoundError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{root}'")
        return data_list


@DATASETS.register_module()
class SyntheticClsDataset(_InMemoryClsDataset):
    """Deterministic generated set: class = a shape or texture, colours/position/size random.

    Sample ``i`` has label ``i % num_classes`` and is drawn with
    ``np.random.default_rng([seed, i])``, so a set is the same on every machine and run
    (use different seeds for train and test). Classes: ``SYNTH_CLS_CLASSES[:num_classes]``.
    """

    METAINFO = dict(classes=SYNTH_CLS_CLASSES)

    def __init__(self,
                 num_samples: int = 200,
                 num_classes: int = 10,
                 image_size: int = 32,
                 seed: int = 0,
                 **kwargs) -> None:
        if not 1 <= num_classes <= len(SYNTH_CLS_CLASSES):
            raise ValueError(
                f'num_classes must be in 1..{len(SYNTH_CLS_CLASSES)}, got {num_classes}')
        if num_samples < 1 or image_size < 16:
            raise ValueError(
                f'need num_samples >= 1 and image_size >= 16, got {num_samples}, {image_size}')
        self.num_samples, self.num_classes = num_samples, num_classes
        self.image_size, self.seed = image_size, seed
        kwargs.setdefault('metainfo', dict(classes=SYNTH_CLS_CLASSES[:num_classes]))
        super().__init__(**kwargs)

    def load_data_list(self) -> list[dict]:
        labels = [i % self.num_classes for i in range(self.num_samples)]
        self.images = np.stack([
            draw_synthetic_image(y, self.image_size, np.random.default_rng([self.seed, i]))
            for i, y in enumerate(labels)
        ])
        return self._make_data_list(labels, f'synthcls{self.seed}')


def draw_synthetic_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (size, size, 3) image of class ``label`` (see ``SYNTH_CLS_CLASSES``)."""
    bg = rng.integers(0, 100, 3)
    fg = rng.integers(130, 256, 3)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = bg
    half = int(size * rng.uniform(0.25, 0.4))
    cx, cy = (int(size / 2 + rng.integers(-size // 8, size // 8 + 1)) for _ in range(2))
    color = tuple(int(c) for c in fg)
    thick = max(1, size // 12)
    yy, xx = np.mgrid[:size, :size]
    inside = (abs(xx - cx) <= half) & (abs(yy - cy) <= half)
    period = max(4, size // 6)
    name = SYNTH_CLS_CLASSES[label]
    if name == 'disc':
        cv2.circle(img, (cx, cy), half, color, -1)
    elif name == 'square':
        cv2.rectangle(img, (cx - half, cy - half), (cx + half, cy + half), color, -1)
    elif name == 'triangle':
        pts = np.array([[cx, cy - half], [cx - half, cy + half], [cx + half, cy + half]], np.int32)
        cv2.fillPoly(img, [pts], color)
    elif name == 'cross':
        cv2.line(img, (cx - half, cy), (cx + half, cy), color, thick + 1)
        cv2.line(img, (cx, cy - half), (cx, cy + half), color, thick + 1)
    elif name == 'ring':
        cv2.circle(img, (cx, cy), half, color, thick)
    else:
        pattern = {
            'h_stripes': (yy // (period // 2)) % 2 == 0,
            'v_stripes': (xx // (period // 2)) % 2 == 0,
            'checker': ((xx // (period // 2)) + (yy // (period // 2))) % 2 == 0,
            'diag_stripes': ((xx + yy) // (period // 2)) % 2 == 0,
            'dots': ((xx % period) - period // 2)**2 + ((yy % period) - period // 2)**2
            <= (period // 4)**2
        }[name]
        img[inside & pattern] = fg
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@DATASETS.register_module()
class VOCObjectCropsDataset(_InMemoryClsDataset):
    """The objects of a VOC-layout detection set as a classification set.

    Each non-difficult object of the images listed in ``ann_file`` becomes one sample: the
    square of side ``context * max(box width, box height)`` centred on its box, resized to
    ``crop_size`` (the image border is mirrored where the square leaves the image), with
    label = its class's index in ``metainfo['classes']``. Images are read once, as BGR (like
    mmcv's loader), and the crops are held in memory. With the detector's own backbone
    arguments this pretrains the backbone that :doc:`detection` then fine-tunes, the way
    ImageNet weights do for Pascal VOC.

    Args:
        data_root: the folder holding ``VOC2007/`` (as for mmdet's ``VOCDataset``).
        ann_file: image-id list relative to ``data_root``
            (``'VOC2007/ImageSets/Main/trainval.txt'``).
        data_prefix: ``dict(sub_data_root='VOC2007/')``: where ``JPEGImages/`` and
            ``Annotations/`` are.
        metainfo: ``dict(classes=(...))``, required: the class names, in label order.
        crop_size: side of the square crops, in pixels.
        context: crop side / longer box side (>= 1).
        with_difficult: also keep objects marked ``difficult``.
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = 'VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix: dict | None = None,
                 metainfo: dict | None = None,
                 crop_size: int = 48,
                 context: float = 1.25,
                 with_difficult: bool = False,
                 **kwargs) -> None:
        if not metainfo or not metainfo.get('classes'):
            raise ValueError("VOCObjectCropsDataset needs metainfo=dict(classes=(...)), the class "
                             'names of the detection set in label order')
        if int(crop_size) < 8:
            raise ValueError(f'crop_size must be an int >= 8, got {crop_size!r}')
        if not float(context) >= 1.0:
            raise ValueError(f'context (crop side / box side) must be >= 1, got {context!r}')
        self.crop_size, self.context = int(crop_size), float(context)
        self.with_difficult = bool(with_difficult)
        super().__init__(data_root=data_root,
                         ann_file=ann_file,
                         data_prefix=data_prefix or dict(sub_data_root='VOC2007/'),
                         metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = tuple(self.metainfo['classes'])
        folder = Path(self.data_prefix.get('sub_data_root', self.data_root))
        ids_file = Path(self.ann_file)
        if not ids_file.is_file():
            raise DataFolderNotFoundError(
                f"image-id list '{ids_file}' not found; expected a VOC layout "
                "(<data_root>/VOC2007/ImageSets/Main/trainval.txt). Write the synthetic set with: "
                'python tools/misc/make_synthetic_voc.py --out DIR')
        ids = ids_file.read_text().split()
        crops, labels = [], []
        for img_id in ids:
            xml = folder / 'Annotations' / f'{img_id}.xml'
            img_path = folder / 'JPEGImages' / f'{img_id}.jpg'
            if not xml.is_file():
                raise DataFolderNotFoundError(f"annotation '{xml}' of image id {img_id!r} "
                                              f"(listed in '{ids_file}') is missing")
            img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if img is None:
                raise DataFolderNotFoundError(f"image '{img_path}' (id {img_id!r}) is missing or "
                                              'not a readable image')
            for obj in ET.parse(xml).getroot().iter('object'):
                name = obj.findtext('name')
                if name not in classes:
                    raise ValueError(f"{xml}: object class {name!r} is not one of the configured "
                                     f'classes {classes}')
                if obj.findtext('difficult', '0').strip() == '1' and not self.with_difficult:
                    continue
                box = [float(obj.find('bndbox').findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
                crops.append(self._crop(img, box))
                labels.append(classes.index(name))
        if not crops:
            raise ValueError(f"no objects of the classes {classes} in the images of '{ids_file}'")
        self.images = np.stack(crops)
        return self._make_data_list(labels, f'crops_{ids_file.stem}')

    def _crop(self, img: np.ndarray, box: list[float]) -> np.ndarray:
        """Square ``context`` x the longer box side around the box centre -> ``crop_size``."""
        x0, y0, x1, y1 = box[0] - 1, box[1] - 1, box[2], box[3]  # VOC: 1-based, inclusive
        half = max(x1 - x0, y1 - y0, 1.0) * self.context / 2
        scale = self.crop_size / (2 * half)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        warp = np.float32([[scale, 0, self.crop_size / 2 - cx * scale],
                           [0, scale, self.crop_size / 2 - cy * scale]])
        return cv2.warpAffine(img, warp, (self.crop_size, self.crop_size), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REFLECT_101)
