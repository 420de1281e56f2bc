"""Where a config's data sets live: point them elsewhere, and fail early, clearly, when missing.

``set_data_root(cfg, root)`` rewrites ``data_root`` of every data set a config's dataloaders
read (wrappers such as ``RepeatDataset``/``ConcatDataset`` included), so one flag moves a
config to another folder. ``check_data(cfg, splits)`` raises :class:`DataNotFoundError`
before anything is built when files are missing; the message lists the exact paths the
config reads and how to run on the synthetic set instead.
"""
from __future__ import annotations

import os.path as osp
from collections.abc import Iterator, Sequence

from mmengine.config import Config

from .synthetic_voc import SYNTH_CLASSES

DATALOADERS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}
_XML_TYPES = ('VOCDataset', 'XMLDataset')

SYNTHETIC_HINT = """\
To run without Pascal VOC, use the embedded synthetic VOC set:
  python tools/misc/make_synthetic_voc.py --out data/synthvoc --num-train 200 --num-test 50
  python tools/train.py configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py
or the whole demo (generate, train, evaluate under distortions, plot): make demo"""


class DataNotFoundError(FileNotFoundError):
    """A config's data set files are not where the config says."""


def leaf_datasets(dataset_cfg: dict) -> Iterator[dict]:
    """The data set configs that read files, below wrappers (``dataset=`` / ``datasets=``)."""
    if 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from leaf_datasets(sub)
    elif 'dataset' in dataset_cfg:
        yield from leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def _split_datasets(cfg: Config, splits: Sequence[str]) -> Iterator[tuple[str, dict]]:
    for split in splits:
        if split not in DATALOADERS:
            raise ValueError(f'unknown split {split!r}; valid: {tuple(DATALOADERS)}')
        loader = cfg.get(DATALOADERS[split])
        if loader and loader.get('dataset'):
            for leaf in leaf_datasets(loader['dataset']):
                yield split, leaf


def set_data_root(cfg: Config, root: str) -> None:
    """Point every data set of ``cfg`` (and its top-level ``data_root``) at ``root``, in place."""
    root = root if root.endswith(('/', '\\')) else root + '/'
    cfg.data_root = root
    for _, leaf in _split_datasets(cfg, tuple(DATALOADERS)):
        leaf['data_root'] = root


def required_paths(dataset_cfg: dict) -> list[str]:
    """Files and folders one data set config reads (annotation file, image folders)."""
    root = dataset_cfg.get('data_root') or ''
    paths = []
    if dataset_cfg.get('ann_file'):
        paths.append(osp.join(root, dataset_cfg['ann_file']))
    prefixes = [p for p in (dataset_cfg.get('data_prefix') or {}).values() if isinstance(p, str)]
    for prefix in prefixes:
        folder = osp.join(root, prefix)
        if dataset_cfg.get('type') in _XML_TYPES:
            paths += [osp.join(folder, dataset_cfg.get('img_subdir', 'JPEGImages')),
                      osp.join(folder, dataset_cfg.get('ann_subdir', 'Annotations'))]
        else:
            paths.append(folder)
    if not paths and root:
        paths.append(root)
    return paths


def missing_paths(cfg: Config, splits: Sequence[str]) -> list[str]:
    """Paths of the given splits' data sets that do not exist (in order, without repeats)."""
    missing: list[str] = []
    for _, leaf in _split_datasets(cfg, splits):
        for path in required_paths(leaf):
            if not osp.exists(path) and path not in missing:
                missing.append(path)
    return missing


def _is_synthetic(cfg: Config, splits: Sequence[str]) -> bool:
    for _, leaf in _split_datasets(cfg, splits):
        classes = (leaf.get('metainfo') or {}).get('classes')
        if classes is not None and tuple(classes) == SYNTH_CLASSES:
            return True
    return False


def check_data(cfg: Config, splits: Sequence[str] = ('train', 'val'), config_name: str = '') -> None:
    """Raise :class:`DataNotFoundError` naming every missing path and the way out."""
    missing = missing_paths(cfg, splits)
    if not missing:
        return
    name = f' of {config_name}' if config_name else ''
    lines = [f'The data set{name} is not where the config reads it. Missing:']
    lines += [f'  {osp.abspath(p)}' for p in missing]
    roots = sorted({leaf.get('data_root') or '.' for _, leaf in _split_datasets(cfg, splits)})
    if _is_synthetic(cfg, splits):
        lines += ['This config reads the synthetic VOC set; write it there with:']
        lines += [f'  python tools/misc/make_synthetic_voc.py --out {r} --num-train 200 --num-test 50'
                  for r in roots]
        lines += ['or point the config at an existing copy with --data-root DIR.']
    else:
        lines += [f'Put Pascal VOC there: {", ".join(osp.abspath(r) for r in roots)} must hold '
                  'VOC2007/{JPEGImages,Annotations,ImageSets/Main} (the VOCdevkit folder of the '
                  'VOC 2007 trainval and test archives; a symlink works: '
                  'ln -s /path/to/VOCdevkit data/VOCdevkit), or pass --data-root DIR.',
                  SYNTHETIC_HINT]
    raise DataNotFoundError('\n'.join(lines))
