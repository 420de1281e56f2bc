"""Classification data sets that mmpretrain lacks or reads unsafely (mmpretrain's DATASETS).

Every sample dict carries ``img`` (uint8 HxWx3, BGR like images read by mmcv), ``gt_label``
(int) and an image id ``img_id`` that seeds per-image distortions, so mmpretrain's transforms,
fq_det's ``Distort`` and mmpretrain's ``PackInputs`` run on them.

* :class:`SafeCIFAR10`, :class:`SafeCIFAR100`: mmpretrain's ``CIFAR10``/``CIFAR100`` reading
  any batch in torchvision's layout (no md5 check against the official files: test fixtures,
  re-packed batches) with an unpickler that only builds numpy arrays; never downloaded.
  (mmpretrain unpickles with plain ``pickle``, which runs code from a crafted file; only its md5
  check against the official archive keeps such a file out.)
* :class:`SyntheticClsDataset`: a generated, deterministic 32x32 shapes/textures set.
* :class:`VOCObjectCropsDataset`: the annotated objects of a VOC-layout detection set, each
  cropped (square, with context) and resized: backbone pretraining for the detectors.

ImageNet-style folders (``<data_root>/<split>/<class>/<image>``) are mmpretrain's
``CustomDataset``.
"""
from __future__ import annotations

import io
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
from mmpretrain.datasets import CIFAR10, CIFAR100, BaseDataset
from mmpretrain.registry import DATASETS

from fq_det.datasets.data_check import DataNotFoundError

SYNTH_CLS_CLASSES = ('disc', 'square', 'triangle', 'cross', 'ring', 'h_stripes', 'v_stripes',
                     'checker', 'diag_stripes', 'dots')


class DataFolderNotFoundError(DataNotFoundError):
    """A data set folder or file is missing; the message names it and the expected layout."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only builds numpy arrays (CIFAR batches hold dicts, lists, bytes, arrays)."""

    _ALLOWED = {('numpy.core.multiarray', '_reconstruct'),
                ('numpy._core.multiarray', '_reconstruct'), ('numpy', 'ndarray'),
                ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'),
                ('numpy._core.multiarray', 'scalar')}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'refusing to load {module}.{name} from a CIFAR file')


def load_cifar_batch(path: str | Path) -> dict:
    """One CIFAR python batch (or meta file) as a dict with ``str`` keys, read safely."""
    with open(path, 'rb') as f:
        data = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding='latin1').load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


class _SafeCIFARMixin:
    """``load_data_list``/``_load_meta`` of mmpretrain's CIFAR sets with the numpy-only reader.

    Differences from mmpretrain's loader: no download (a missing file raises
    :class:`DataFolderNotFoundError` naming it and the expected layout), no md5 check, images
    converted to BGR (like images read by mmcv, so the distortions and
    ``ClsDataPreprocessor(to_rgb=True)`` treat them as detection images), and an ``img_id``
    per sample (``cifar10_test_000042``).
    """

    img_id_prefix: str
    archive: str

    def __init__(self, data_root: str = '', split: str = 'train', **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if kwargs.pop('download', False):
            raise ValueError(f'{type(self).__name__} never downloads; extract {self.archive} '
                             f"into '{data_root}' instead")
        super().__init__(data_root=data_root, split=split, download=False, **kwargs)

    @property
    def _folder(self) -> Path:
        return Path(self.data_prefix['root']) / self.base_folder

    def load_data_list(self) -> list[dict]:
        files = [name for name, _ in (self.train_list if self.split == 'train' else self.test_list)]
        needed = files + [self.meta['filename']]
        missing = [name for name in needed if not (self._folder / name).is_file()]
        if missing:
            state = ('lacks ' + ', '.join(missing)) if self._folder.is_dir() else 'does not exist'
            raise DataFolderNotFoundError(
                f"{type(self).__name__} {self.split} data not found: folder '{self._folder}' "
                f"{state}. Expected torchvision's layout {self.base_folder}/"
                f"{{{', '.join(needed)}}} (extract {self.archive} into "
                f"'{self.data_prefix['root']}'); fq-det never downloads data.")
        images, labels = [], []
        for name in files:
            batch = load_cifar_batch(self._folder / name)
            images.append(np.asarray(batch['data'], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(y) for y in batch.get('labels', batch.get('fine_labels', [])))
        # (N, 3, 32, 32) RGB -> (N, 32, 32, 3) BGR
        images = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1)[..., ::-1])
        if len(labels) != len(images):
            raise ValueError(f"{self._folder}: {len(images)} images but {len(labels)} labels "
                             "('labels' or 'fine_labels' key)")
        if self.CLASSES is None:
            self._load_meta()
        prefix = f'{self.img_id_prefix}_{self.split}'
        return [
            dict(img=img, gt_label=y, img_id=f'{prefix}_{i:06d}')
            for i, (img, y) in enumerate(zip(images, labels))
        ]

    def _load_meta(self) -> None:
        meta = load_cifar_batch(self._folder / self.meta['filename'])
        self._metainfo['classes'] = tuple(meta[self.meta['key']])


@DATASETS.register_module()
class SafeCIFAR10(_SafeCIFARMixin, CIFAR10):
    """mmpretrain's ``CIFAR10`` read safely (see :class:`_SafeCIFARMixin`).

    ``data_root`` is the folder that *contains* ``cifar-10-batches-py/`` (torchvision's
    ``root``); ``split`` is 'train' or 'test'. Class names: mmpretrain's ``METAINFO`` (the
    ``batches.meta`` names), or the meta file when ``metainfo=dict(classes=None)``.
    """

    img_id_prefix = 'cifar10'
    archive = 'cifar-10-python.tar.gz'


@DATASETS.register_module()
class SafeCIFAR100(_SafeCIFARMixin, CIFAR100):
    """mmpretrain's ``CIFAR100`` read safely: ``<data_root>/cifar-100-python/{train,test,meta}``,
    fine labels."""

    img_id_prefix = 'cifar100'
    archive = 'cifar-100-python.tar.gz'


@DATASETS.register_module()
class SyntheticClsDataset(BaseDataset):
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
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> list[dict]:
        prefix = f'synthcls{self.seed}'
        return [
            dict(img=draw_synthetic_image(i % self.num_classes, self.image_size,
                                          np.random.default_rng([self.seed, i])),
                 gt_label=i % self.num_classes,
                 img_id=f'{prefix}_{i:06d}') for i in range(self.num_samples)
        ]


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
class VOCObjectCropsDataset(BaseDataset):
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
        ids = ids_file.read_text(encoding='utf-8-sig').split()  # a leading BOM is not an id
        data_list = []
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
                data_list.append(
                    dict(img=self._crop(img, box),
                         gt_label=classes.index(name),
                         img_id=f'crops_{ids_file.stem}_{len(data_list):06d}'))
        if not data_list:
            raise ValueError(f"no objects of the classes {classes} in the images of '{ids_file}'")
        return data_list

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
