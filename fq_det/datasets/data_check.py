"""Where a config's data sets live: point them elsewhere, and fail early, clearly, when wrong.

``set_data_root(cfg, root)`` rewrites ``data_root`` of every data set a config's dataloaders
read (wrappers such as ``RepeatDataset``/``ConcatDataset`` included), so one flag moves a
config to another folder.

``check_data(cfg, splits)`` is the one check the tools run before training, testing or
sweeping. It raises :class:`DataNotFoundError` when files are missing (the message lists
the exact paths the config reads and how to run on the synthetic set instead) and, for
Pascal VOC-layout data sets, :class:`DataCheckError` naming the file for: an empty image
list, one that mmdet's loader would misread (a UTF-8 byte-order mark, blank lines, spaces
around an id: named with their line numbers) or that lists an id twice, a missing, empty,
unreadable or truncated image (a JPEG or PNG that does not end as a complete file does is
decoded, to tell a cut-off file from extra data after its end), a malformed annotation
file (also a ``nan`` or ``inf`` coordinate),
no annotated object of the config's classes (the classes found are listed; objects of
other classes beside them give one warning with their count and classes), and invalid boxes
(``xmin > xmax`` or ``ymin > ymax``, or outside the image). Invalid boxes are listed with
their file and object index; with ``invalid_boxes='clip'`` (or the config entry
``data_check = dict(invalid_boxes='clip')``, e.g. ``--cfg-options
data_check.invalid_boxes=clip``) they are clipped to the image instead, with a warning
(:class:`~fq_det.datasets.clip_boxes.ClipGtBoxes` is inserted after ``LoadAnnotations``).
"""
from __future__ import annotations

import os.path as osp
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence

from mmengine.config import Config

from .image_files import ImageFileError, check_image_file, ends_complete
from .synthetic_voc import SYNTH_CLASSES
from .voc_xml import VOCAnnotationError, parse_voc_xml

DATALOADERS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}
_XML_TYPES = ('VOCDataset', 'XMLDataset')

SYNTHETIC_HINT = """\
To run without Pascal VOC, use the embedded synthetic VOC set:
  python tools/misc/make_synthetic_voc.py --out data/synthvoc --num-train 200 --num-test 50
  python tools/train.py configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py
or the whole demo (generate, train, evaluate under distortions, plot): make demo"""


#: What ``check_data`` does with invalid boxes: stop with a list of them, or clip them.
INVALID_BOX_MODES = ('error', 'clip')
_MAX_LISTED = 20


class DataNotFoundError(FileNotFoundError):
    """A config's data set files are not where the config says."""


class DataCheckError(DataNotFoundError):
    """A data set's files are there but wrong (empty list, bad image or XML, invalid boxes,
    classes that are not the config's). A :class:`DataNotFoundError`, so every caller that
    reports that one reports this one too."""


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
    """Point every data set of ``cfg`` (and its top-level ``data_root``) at ``root``, in place.

    An evaluator's ``ann_file`` below an old data root (``CocoMetric(ann_file=data_root +
    'annotations/...')``, as MMDetection's COCO configs write it) moves along.
    """
    root = root if root.endswith(('/', '\\')) else root + '/'
    old_roots = {leaf.get('data_root') for _, leaf in _split_datasets(cfg, tuple(DATALOADERS))}
    old_roots = sorted({r for r in old_roots | {cfg.get('data_root')} if r}, key=len, reverse=True)
    cfg.data_root = root
    for _, leaf in _split_datasets(cfg, tuple(DATALOADERS)):
        leaf['data_root'] = root
    for key in ('val_evaluator', 'test_evaluator'):
        for metric in _metric_cfgs(cfg.get(key)):
            ann = metric.get('ann_file')
            old = next((r for r in old_roots if isinstance(ann, str)
                        and ann.startswith(r.rstrip('/') + '/')), None)
            if old is not None:
                metric['ann_file'] = root + ann[len(old.rstrip('/')) + 1:]


def _metric_cfgs(evaluator) -> list:
    """The metric configs of an evaluator config (a dict, a list, or ``metrics=[...]``)."""
    if not evaluator:
        return []
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    return [m for m in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator])
            if isinstance(m, dict)]


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


def check_data(cfg: Config, splits: Sequence[str] = ('train', 'val'), config_name: str = '',
               invalid_boxes: str | None = None) -> None:
    """Check the data of ``splits`` before anything is built (see the module docstring).

    Args:
        cfg: the config; with ``invalid_boxes='clip'`` its pipelines are changed in place.
        splits: among ``'train'``, ``'val'``, ``'test'``.
        config_name: named in the messages.
        invalid_boxes: ``'error'`` (stop, the default) or ``'clip'``; default: the config's
            ``data_check.invalid_boxes``.

    Raises:
        DataNotFoundError: files are missing.
        DataCheckError: files are there but wrong.
    """
    mode = invalid_boxes or (cfg.get('data_check') or {}).get('invalid_boxes', 'error')
    if mode not in INVALID_BOX_MODES:
        raise ValueError(f'invalid_boxes (data_check.invalid_boxes) must be one of '
                         f'{", ".join(INVALID_BOX_MODES)}, got {mode!r}')
    _check_paths(cfg, splits, config_name)
    for split, leaf in _split_datasets(cfg, splits):
        if leaf.get('type') in _XML_TYPES or str(leaf.get('type', '')).endswith('.VOCDataset'):
            bad_boxes = check_voc_dataset(leaf, split, config_name)
            if bad_boxes and mode == 'error':
                raise DataCheckError(
                    _box_report(bad_boxes, split) + '\nFix the annotations, or clip the boxes to '
                    'the image (reversed boxes are dropped) with --cfg-options '
                    'data_check.invalid_boxes=clip (check_data(..., invalid_boxes="clip")).')
            if bad_boxes:
                warnings.warn(_box_report(bad_boxes, split) + '\nThey are clipped to the image; '
                              'reversed boxes are dropped (data_check.invalid_boxes=clip).')
                _insert_clip(leaf)


def _check_paths(cfg: Config, splits: Sequence[str], config_name: str) -> None:
    """Raise :class:`DataNotFoundError` naming every missing path and the way out."""
    missing = missing_paths(cfg, splits)
    if not missing:
        return
    name = f' of {config_name}' if config_name else ''
    lines = [f'The data set{name} is not where the config reads it. Missing:']
    lines += [f'  {osp.abspath(p)}' for p in missing]
    roots = sorted({leaf.get('data_root') or '.' for _, leaf in _split_datasets(cfg, splits)})
    if _is_synthetic(cfg, splits):
        coco = any('Coco' in str(leaf.get('type', '')) for _, leaf in _split_datasets(cfg, splits))
        lines += [f'This config reads the synthetic {"COCO-format" if coco else "VOC"} set; '
                  'write it there with:']
        lines += [f'  python tools/misc/make_synthetic_voc.py --out {r} --num-train 200 '
                  f'--num-test 50{" --format coco" if coco else ""}' for r in roots]
        lines += ['or point the config at an existing copy with --data-root DIR.']
    else:
        lines += [f'Put Pascal VOC there: {", ".join(osp.abspath(r) for r in roots)} must hold '
                  'VOC2007/{JPEGImages,Annotations,ImageSets/Main} (the VOCdevkit folder of the '
                  'VOC 2007 trainval and test archives; a symlink works: '
                  'ln -s /path/to/VOCdevkit data/VOCdevkit), or pass --data-root DIR.',
                  SYNTHETIC_HINT]
    raise DataNotFoundError('\n'.join(lines))


def _config_classes(leaf: dict) -> tuple[str, ...]:
    classes = (leaf.get('metainfo') or {}).get('classes')
    if classes is None:
        from mmdet.registry import DATASETS
        dataset_cls = DATASETS.get(str(leaf.get('type', 'VOCDataset')).split('.')[-1])
        classes = getattr(dataset_cls, 'METAINFO', {}).get('classes', ())
    return tuple(classes)


def _image_size(img_path: str) -> tuple[int, int]:
    """Width and height of a complete image file; :class:`DataCheckError` naming it if it is
    not one (only a file that does not end as a complete JPEG or PNG does is decoded)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(img_path) as img:
            size, image_format = img.size, img.format
    except (UnidentifiedImageError, OSError) as err:
        raise DataCheckError(f'{img_path} is not a readable image ({err})') from None
    if not ends_complete(img_path, image_format):
        try:
            check_image_file(img_path)  # truncated, or data after the end marker?
        except ImageFileError as err:
            raise DataCheckError(str(err)) from None
    return size


def check_voc_dataset(leaf: dict, split: str = 'test', config_name: str = '') -> list[tuple]:
    """Check one VOC-layout data set config; return its invalid boxes.

    Returns ``[(xml file, object index, class, xml box, image size, reason), ...]``.
    Raises :class:`DataCheckError` for everything else that is wrong (see module docstring).
    """
    root = leaf.get('data_root') or ''
    if not leaf.get('ann_file'):
        return []  # mmdet's XMLDataset requires an ann_file; nothing to check without one
    ann_file = osp.join(root, leaf['ann_file'])
    folder = osp.join(root, (leaf.get('data_prefix') or {}).get('sub_data_root', ''))
    img_dir = osp.join(folder, leaf.get('img_subdir', 'JPEGImages'))
    ann_dir = osp.join(folder, leaf.get('ann_subdir', 'Annotations'))
    ids = read_split_file(ann_file, split)
    classes = _config_classes(leaf)
    found: Counter = Counter()
    bad_boxes = []
    for img_id in ids:
        img_path, xml_path = osp.join(img_dir, f'{img_id}.jpg'), osp.join(ann_dir, f'{img_id}.xml')
        for path in (img_path, xml_path):
            if not osp.isfile(path):
                raise DataCheckError(f'{path} (listed in {ann_file}) does not exist')
            if osp.getsize(path) == 0:
                raise DataCheckError(f'{path} is empty (0 bytes)')
        width, height = _image_size(img_path)
        try:
            _, objects = parse_voc_xml(xml_path)
        except VOCAnnotationError as err:
            raise DataCheckError(str(err)) from None
        for index, obj in enumerate(objects):
            found[obj.name] += 1
            if obj.name not in classes:
                continue
            reason = _box_problem(obj.box, width, height)
            if reason:
                bad_boxes.append((xml_path, index, obj.name, obj.box, (width, height), reason))
    others = {c: n for c, n in found.most_common() if c not in classes}
    if others and any(found[c] for c in classes):
        warnings.warn(f'{sum(others.values())} object(s) in {ann_dir} (the {split} set) are of '
                      f'classes the config does not have and are left out: '
                      f'{", ".join(f"{c} ({n})" for c, n in others.items())}')
    if not any(found[c] for c in classes):
        listed = ', '.join(f'{c} ({n})' for c, n in found.most_common()) or 'none'
        name = f' of {config_name}' if config_name else ''
        raise DataCheckError(
            f'No annotated object in {ann_dir} (the {split} set{name}) is of the config\'s '
            f'classes ({", ".join(classes)}). Classes found in the folder (objects): {listed}. '
            'Set the config\'s classes to the folder\'s, e.g. metainfo = dict(classes=(...)) on '
            'every data set and model.roi_head.bbox_head.num_classes (or the head\'s '
            'num_classes) = their number; or point --data-root at a folder of the config\'s '
            'classes.')
    return bad_boxes


def read_split_file(ann_file: str, split: str = 'test') -> list[str]:
    """The image ids of a VOC split file, as mmdet's loader reads it (one id per line, only
    the line end removed); :class:`DataCheckError` naming the file and the lines for what
    that loader would turn into a wrong id: a UTF-8 byte-order mark, blank lines, spaces
    around an id; and for ids listed twice."""
    with open(ann_file, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as err:
        raise DataCheckError(f'{ann_file} is not UTF-8 text ({err})') from None
    lines = [line.rstrip('\r') for line in text.split('\n')]  # as mmengine's list_from_file
    if lines and lines[-1] == '':
        lines.pop()  # the end of the last line, not a line
    if not any(line.strip() for line in lines):
        raise DataCheckError(f'The {split} image list {ann_file} is empty: there is nothing to '
                             f'{"train on" if split == "train" else "evaluate"}')
    if text.startswith('\ufeff'):
        raise DataCheckError(
            f'{ann_file} starts with a UTF-8 byte-order mark, which mmdet\'s VOC loader reads '
            f'as part of the first image id ({lines[0].lstrip(chr(0xfeff))!r} would be looked '
            f'up as {lines[0]!r}); save it without one, e.g. sed -i \'1s/^\\xEF\\xBB\\xBF//\' '
            f'{ann_file}')
    blank = [i for i, line in enumerate(lines, 1) if not line.strip()]
    spaced = [i for i, line in enumerate(lines, 1) if line.strip() and line != line.strip()]
    for rows, what, fix in (
            (blank, "blank (mmdet's VOC loader reads it as the image id '', i.e. "
                    'Annotations/.xml)', 'remove them'),
            (spaced, "an id with spaces around it (mmdet's VOC loader keeps them in the file "
                     'name)', 'remove the spaces')):
        if rows:
            listed = ', '.join(map(str, rows[:_MAX_LISTED])) + (
                ' ...' if len(rows) > _MAX_LISTED else '')
            raise DataCheckError(f'{ann_file}: line{"s" if len(rows) > 1 else ""} {listed} '
                                 f'{"are" if len(rows) > 1 else "is"} {what}; {fix}')
    seen: dict[str, int] = {}
    for i, img_id in enumerate(lines, 1):
        if img_id in seen:
            raise DataCheckError(f'{ann_file}: image id {img_id!r} is listed twice (lines '
                                 f'{seen[img_id]} and {i}); list every image once, or it is '
                                 'trained on or evaluated twice')
        seen[img_id] = i
    return lines


def _box_problem(box: tuple, width: int, height: int) -> str:
    """Why a VOC box (1-based; 0-based files are accepted too) is invalid, or ''."""
    xmin, ymin, xmax, ymax = box
    problems = []
    if xmin > xmax:
        problems.append('xmin > xmax')
    if ymin > ymax:
        problems.append('ymin > ymax')
    if min(xmin, ymin) < 0 or max(xmin, xmax) > width or max(ymin, ymax) > height:
        problems.append(f'outside the {width}x{height} image')
    return ', '.join(problems)


def _box_report(bad_boxes: list[tuple], split: str) -> str:
    lines = [f'{len(bad_boxes)} invalid box(es) in the {split} annotations:']
    for xml_path, index, name, box, (w, h), reason in bad_boxes[:_MAX_LISTED]:
        lines.append(f'  {xml_path}: object {index} ({name}) box '
                     f'{", ".join(f"{v:g}" for v in box)}: {reason}')
    if len(bad_boxes) > _MAX_LISTED:
        lines.append(f'  ... and {len(bad_boxes) - _MAX_LISTED} more')
    return '\n'.join(lines)


def _insert_clip(leaf: dict) -> None:
    """``ClipGtBoxes`` right after every ``LoadAnnotations`` of the data set's pipeline."""
    pipeline = list(leaf.get('pipeline') or [])
    out = []
    for i, t in enumerate(pipeline):
        out.append(t)
        name = str(t.get('type', '')).split('.')[-1]
        following = pipeline[i + 1] if i + 1 < len(pipeline) else {}
        if name == 'LoadAnnotations' and str(following.get('type', '')).split('.')[-1] != \
                'ClipGtBoxes':
            out.append(dict(type='mmdet.ClipGtBoxes'))
    leaf['pipeline'] = out
