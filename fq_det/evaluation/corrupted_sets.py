"""Corrupted test sets written once and read back: VOC-C / COCO-C style exports.

:func:`export_corrupted` writes a config's test split once per (distortion, severity)
into ``<root>/<folder>/<severity>/``, mirroring the files the test data set reads below
its ``data_root`` (VOC: ``VOC2007/JPEGImages/<id>.jpg``, ``VOC2007/Annotations/<id>.xml``,
``VOC2007/ImageSets/Main/test.txt``; COCO: the annotation JSON and the image folder), so
that the same config, with its ``data_root`` pointed at a pair's folder, reads the
corrupted set unchanged. ``<folder>`` is the distortion's name with ``:`` written ``-``
(``c:fog`` -> ``c-fog``; this project's ``motion_blur`` stays ``motion_blur``).

* **The images** are the output of :func:`~fq_det.datasets.distortion_route.distortion_block`,
  the sweep's own test pipeline up to ``Distort`` (the one distortion route: the same
  per-image seed, the same insertion rule), stored **losslessly as PNG under the source
  file names** (``000001.jpg`` holds PNG bytes: MMDetection's VOC loader hard-codes the
  ``.jpg`` suffix, and mmcv decodes by content). Read back by the same loading transforms
  they are the array the sweep would distort on the fly, byte for byte; a JPEG re-encode
  would change them.
* **The annotations** are copied (``annotations='copy'``, the default: a pair's folder
  stands on its own and can be moved) or symbolic links to the source files
  (``'link'``: no copies, but tied to the source's place).
* **Resumable**: a pair is finished when its ``pair.json`` (written last, atomically)
  exists; a rerun skips finished pairs and redoes unfinished ones. ``manifest.json``
  holds the settings every pair shares; an export into a folder whose manifest differs
  (other source data, loading transforms, seed, format, annotation mode) is refused,
  naming what changed, as is a finished pair whose corruption now gives other pixels
  (its *fingerprint*, the digest of a fixed probe image corrupted through the same
  route, differs: the code or its parameters changed).
* **Parallel**: ``workers`` processes (started with ``spawn``; each builds the test set
  once) corrupt and write images; mmengine's ``ProgressBar`` counts them.

``pair.json`` lists, per image, its id, its key (:func:`~fq_det.datasets.distortion_route.image_key`),
the 128-bit seed of its generator (:func:`~fq_det.datasets.distortion_route.distortion_seed`),
the written file and its sha256; and the pair's distortion, severity, base seed, severity
parameter and fingerprint.

:func:`open_corrupted_set` is the reading side (``tools/test_robustness.py
--corrupted-root``): it checks the manifest against the sweep's config (same source
data, loading transforms and seed; every asked pair finished with the current
fingerprint) and returns each pair's data root.
"""
from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing as mp
import os
import os.path as osp
import shutil
import sys
from typing import Iterable, Sequence

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar

from fq_det.datasets import common_corruptions
from fq_det.datasets.data_check import leaf_datasets
from fq_det.datasets.distortion_route import (distort_image, distortion_block,
                                              distortion_seed, image_key)
from fq_det.datasets.distortions import (SEVERITY_TABLE, check_severity, needs_boxes,
                                         resolve_preset)
from fq_det.utils.io import atomic_write_text, read_json
from .sweep_store import data_identity

__all__ = ['export_corrupted', 'open_corrupted_set', 'export_identity', 'pair_folder', 'pair_root',
           'corruption_fingerprint', 'StaleExportError', 'MANIFEST', 'PAIR_FILE',
           'ANNOTATION_MODES']

MANIFEST = 'manifest.json'
PAIR_FILE = 'pair.json'
FORMAT_VERSION = 1
IMAGE_FORMAT = 'png'
ANNOTATION_MODES = ('copy', 'link')
_CHUNK = 8  # images per worker task


class StaleExportError(ValueError):
    """An export folder holds another export (other data, settings or corruption code)."""


# ------------------------------------------------------------------------ naming
def pair_folder(distortion: str) -> str:
    """``c:fog`` -> ``c-fog``: the folder of a distortion (no ``:`` in paths)."""
    return distortion.replace(':', '-')


def pair_root(root: str, distortion: str, severity: int) -> str:
    """``<root>/<pair_folder(distortion)>/<severity>/``: a pair's data root."""
    return osp.join(str(root), pair_folder(distortion), str(int(severity))) + os.sep


def _pair_id(distortion: str, severity: int) -> str:
    return f'{distortion}/{int(severity)}'


def _parameter(distortion: str, severity: int) -> dict:
    """The severity parameter of the distortion's table, as JSON."""
    if distortion in SEVERITY_TABLE:
        spec = SEVERITY_TABLE[distortion]
    elif distortion.startswith('c:'):
        spec = common_corruptions.CORRUPTION_TABLE[distortion[2:]]
    else:
        return dict(parameter='imagecorruptions', value=None)
    return dict(parameter=spec.parameter, value=json.loads(json.dumps(spec.levels[severity - 1])))


def corruption_fingerprint(distortion: str, severity: int, seed: int) -> str:
    """sha256 of a fixed 96x64 probe image (and probe box) corrupted through the one
    route: changes when the code or the parameters give other pixels."""
    rng = np.random.default_rng(20240601)
    probe = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (5, 5), 0)
    boxes = np.array([[10.0, 8.0, 60.0, 50.0]]) if needs_boxes(distortion) else None
    out = distort_image(probe, distortion, severity, seed, 'probe|probe.png', boxes=boxes)
    return hashlib.sha256(out.tobytes()).hexdigest()


# ------------------------------------------------------------------ the test set
def _test_dataset_cfg(cfg: Config) -> dict:
    """The test data set config (one data set reading files below one data root)."""
    dataset = copy.deepcopy((cfg.get('test_dataloader') or {}).get('dataset'))
    if not dataset:
        raise ValueError('The config has no test_dataloader.dataset to export')
    dataset = dataset.to_dict() if hasattr(dataset, 'to_dict') else dict(dataset)
    leaves = list(leaf_datasets(dataset))
    if len(leaves) != 1 or leaves[0] is not dataset or 'pipeline' not in dataset:
        raise ValueError(f'Exporting needs the test set as one data set with a pipeline; '
                         f'test_dataloader.dataset is a {dataset.get("type")!r} of '
                         f'{len(leaves)} data set(s)')
    if not dataset.get('data_root'):
        dataset['data_root'] = cfg.get('data_root') or ''
    if not dataset['data_root']:
        raise ValueError('The test set has no data_root: an export mirrors the files below it')
    return dataset


def _relative(path: str, data_root: str) -> str:
    rel = osp.relpath(osp.abspath(path), osp.abspath(data_root))
    if rel.startswith('..') or osp.isabs(rel):
        raise ValueError(f'{path} lies outside the test set\'s data_root {data_root}: an export '
                         'mirrors the files below the data root')
    return rel


# ---------------------------------------------------------------- the workers
_STATE: dict = {}


def _init_worker(dataset_cfg: dict, threads: int) -> None:
    """Build the test data set once per process."""
    cv2.setNumThreads(threads)
    if 'dataset' in _STATE:
        return
    import fq_det.datasets.transforms  # noqa: F401  (registers Distort)
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    _STATE['dataset'] = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    _STATE['pipelines'] = {}
    _STATE['cfg_pipeline'] = dataset_cfg['pipeline']


def _pipeline(distortion: str, severity: int, seed: int):
    from mmengine.dataset import Compose
    key = (distortion, severity, seed)
    if key not in _STATE['pipelines']:
        _STATE['pipelines'][key] = Compose(
            distortion_block(_STATE['cfg_pipeline'], distortion, severity, seed))
    return _STATE['pipelines'][key]


def _lossless(img: np.ndarray, path: str) -> np.ndarray:
    """``img`` as uint8, if that loses nothing."""
    if img.dtype == np.uint8:
        return img
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if not np.array_equal(out, img):
        raise ValueError(f'{path}: the pipeline\'s image is {img.dtype} with values that are not '
                         'integers in 0..255; it cannot be stored losslessly as PNG')
    return out


def _export_chunk(task: tuple) -> tuple[str, list[dict]]:
    """Corrupt and write the images ``indices`` of one pair; their records."""
    pid, distortion, severity, seed, indices, out_root, data_root = task
    dataset, pipeline = _STATE['dataset'], _pipeline(distortion, severity, seed)
    records = []
    for index in indices:
        results = pipeline(dataset.get_data_info(index))
        rel = _relative(results['img_path'], data_root)
        ok, buf = cv2.imencode('.png', _lossless(results['img'], rel),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f'cv2.imencode failed to encode {rel} as PNG')
        data = buf.tobytes()
        target = osp.join(out_root, rel)
        os.makedirs(osp.dirname(target), exist_ok=True)
        with open(target, 'wb') as f:
            f.write(data)
        key = image_key(results.get('img_id'), results.get('img_path'))
        records.append(dict(index=int(index), img_id=str(results.get('img_id')), key=key,
                            seed=f'{distortion_seed(seed, key, distortion, severity):032x}',
                            file=rel, sha256=hashlib.sha256(data).hexdigest()))
    return pid, records


# ------------------------------------------------------------------ the manifest
def _settings(cfg: Config, dataset_cfg: dict, seed: int, annotations: str) -> dict:
    """What every pair of an export shares (a changed one makes the folder stale)."""
    return dict(format_version=FORMAT_VERSION, image_format=IMAGE_FORMAT,
                annotations=annotations, seed=int(seed), source=data_identity(cfg),
                dataset_type=str(dataset_cfg.get('type')),
                load_pipeline=json.loads(json.dumps(
                    distortion_block(dataset_cfg['pipeline'], None), default=str)))


def _setting_changes(old: dict, new: dict) -> list[str]:
    names = dict(source='source data (data root, annotation file or content)',
                 load_pipeline="the test pipeline's loading transforms", seed='seed',
                 image_format='image format', annotations='annotation mode',
                 format_version='export format version', dataset_type='data set type')
    return [f'{label}: {old.get(k)!r} -> {new.get(k)!r}' if k in ('seed', 'annotations',
                                                                 'image_format')
            else label for k, label in names.items() if old.get(k) != new.get(k)]


def _check_manifest(root: str, settings: dict, purpose: str) -> dict | None:
    manifest = read_json(osp.join(root, MANIFEST))
    if manifest is None:
        return None
    changes = _setting_changes(manifest.get('settings') or {}, settings)
    if changes:
        raise StaleExportError(
            f'{root} holds an export of other settings; what differs:\n  ' + '\n  '.join(changes)
            + ('\nExport into another --out, or start afresh with --overwrite.' if purpose ==
               'export' else '\nExport the set again for this config (tools/misc/'
               'export_corrupted.py) or point --corrupted-root at a matching export.'))
    return manifest


def _finished(root: str, distortion: str, severity: int, seed: int) -> dict | None:
    """The pair's ``pair.json`` if it is finished; a named error if it is stale."""
    record = read_json(osp.join(pair_root(root, distortion, severity), PAIR_FILE))
    if record is None:
        return None
    if record.get('fingerprint') != corruption_fingerprint(distortion, severity, seed):
        raise StaleExportError(
            f'{pair_root(root, distortion, severity)} was exported by a version of '
            f'{distortion!r} (severity {severity}) that gives other pixels than this code '
            f'(parameter then {record.get("parameter")}, now {_parameter(distortion, severity)}); '
            f'delete that folder and export it again, or use another folder')
    return record


def _write_manifest(root: str, settings: dict, pairs: dict) -> None:
    atomic_write_text(osp.join(root, MANIFEST), json.dumps(
        dict(settings=settings, pairs=dict(sorted(pairs.items()))), indent=1))


# --------------------------------------------------------------------- export
def _annotation_files(dataset) -> list[str]:
    """The non-image files the test set reads: its annotation file, per-image XML, seg maps."""
    files = [dataset.ann_file] if getattr(dataset, 'ann_file', '') else []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        files += [info[k] for k in ('xml_path', 'seg_map_path') if info.get(k)]
    return list(dict.fromkeys(files))


def _put_annotations(files: Sequence[str], data_root: str, out_root: str, mode: str) -> None:
    for path in files:
        target = osp.join(out_root, _relative(path, data_root))
        os.makedirs(osp.dirname(target), exist_ok=True)
        if osp.lexists(target):
            os.remove(target)
        if mode == 'link':
            os.symlink(osp.abspath(path), target)
        else:
            shutil.copyfile(path, target)


def _run_tasks(tasks: list[tuple], dataset_cfg: dict, workers: int, total: int, on_done) -> None:
    """Run the chunks (``workers`` processes), a progress bar over the images."""
    bar = ProgressBar(total, file=sys.stdout)
    if workers == 1:
        _init_worker(dataset_cfg, cv2.getNumThreads())
        results = map(_export_chunk, tasks)
        pool = None
    else:
        # spawn, not fork: a child forked while another thread of the parent (OpenCV's or
        # torch's pool) holds a lock waits on it for ever (seen in a test process)
        pool = mp.get_context('spawn').Pool(workers, _init_worker, (dataset_cfg, 1))
        results = pool.imap_unordered(_export_chunk, tasks)
    try:
        for pid, records in results:
            bar.update(len(records))
            on_done(pid, records)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        bar.file.write('\n')


def export_corrupted(cfg: Config, out_dir: str, distortions: str | Iterable[str] = 'benchmark',
                     severities: Iterable[int] = (1, 2, 3, 4, 5), seed: int = 0,
                     workers: int = 1, annotations: str = 'copy',
                     overwrite: bool = False) -> dict:
    """Write the test split of ``cfg`` once per (distortion, severity); return the manifest.

    Args:
        cfg: the config whose ``test_dataloader.dataset`` (and test pipeline) is exported.
        out_dir: the export root; ``<out_dir>/<pair_folder(d)>/<s>/`` per pair.
        distortions: a preset or names (:func:`~fq_det.datasets.distortions.resolve_preset`).
        severities: among 1..5.
        seed: the base seed of the distortions (``--seed`` of the sweep).
        workers: processes corrupting and writing images (the files do not depend on it).
        annotations: ``'copy'`` or ``'link'`` (symbolic links to the source files).
        overwrite: delete the manifest and the pairs it lists first.
    """
    distortions = resolve_preset(distortions)
    severities = tuple(check_severity(s) for s in severities)
    if annotations not in ANNOTATION_MODES:
        raise ValueError(f'annotations must be one of {", ".join(ANNOTATION_MODES)}, '
                         f'got {annotations!r}')
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f'workers must be an int >= 1, got {workers!r}')
    dataset_cfg = _test_dataset_cfg(cfg)
    data_root = dataset_cfg['data_root']
    settings = _settings(cfg, dataset_cfg, seed, annotations)
    os.makedirs(out_dir, exist_ok=True)
    _STATE.clear()  # a data set of an earlier export is not this one
    if overwrite:
        _remove_export(out_dir)
    manifest = _check_manifest(out_dir, settings, 'export') or dict(pairs={})
    pairs = dict(manifest.get('pairs') or {})
    _init_worker(dataset_cfg, cv2.getNumThreads())  # the parent's copy (annotation files)
    dataset = _STATE['dataset']
    if not len(dataset):
        raise ValueError(f'The test set of {cfg.filename or "the config"} is empty: nothing to '
                         'export')
    todo = []
    for d in distortions:
        for s in severities:
            if _finished(out_dir, d, s, seed) is not None:
                print(f'{_pair_id(d, s)}: in {pair_root(out_dir, d, s)}, skipped', flush=True)
            else:
                todo.append((d, s))
    _write_manifest(out_dir, settings, pairs)
    if todo:
        files = _annotation_files(dataset)
        print(f'exporting {len(todo)} pair(s) x {len(dataset)} images into {out_dir} '
              f'({workers} worker(s))', flush=True)
        for d, s in todo:  # annotations first: a pair is finished only with its pair.json
            _put_annotations(files, data_root, pair_root(out_dir, d, s), annotations)
        try:
            _export_pairs(todo, dataset_cfg, out_dir, settings, pairs, workers, len(dataset))
        finally:
            _STATE.clear()
    return read_json(osp.join(out_dir, MANIFEST))


def _export_pairs(todo: list[tuple], dataset_cfg: dict, out_dir: str, settings: dict,
                  pairs: dict, workers: int, num_images: int) -> None:
    seed = settings['seed']
    tasks = [(_pair_id(d, s), d, s, seed, range(i, min(i + _CHUNK, num_images)),
              pair_root(out_dir, d, s), dataset_cfg['data_root'])
             for d, s in todo for i in range(0, num_images, _CHUNK)]
    done: dict[str, list] = {_pair_id(d, s): [] for d, s in todo}
    by_id = {_pair_id(d, s): (d, s) for d, s in todo}

    def on_done(pid: str, records: list[dict]) -> None:
        done[pid].extend(records)
        if len(done[pid]) < num_images:
            return
        d, s = by_id[pid]
        record = dict(distortion=d, severity=s, seed=seed, parameter=_parameter(d, s),
                      fingerprint=corruption_fingerprint(d, s, seed), num_images=num_images,
                      images=sorted(done[pid], key=lambda r: r['index']))
        atomic_write_text(osp.join(pair_root(out_dir, d, s), PAIR_FILE),
                          json.dumps(record, indent=0))
        pairs[pid] = dict(folder=osp.relpath(pair_root(out_dir, d, s), out_dir),
                          num_images=num_images, fingerprint=record['fingerprint'],
                          parameter=record['parameter'])
        _write_manifest(out_dir, settings, pairs)

    _run_tasks(tasks, dataset_cfg, workers, len(todo) * num_images, on_done)


def _remove_export(out_dir: str) -> None:
    """Delete the manifest and every pair folder it lists."""
    manifest = read_json(osp.join(out_dir, MANIFEST)) or {}
    for entry in (manifest.get('pairs') or {}).values():
        shutil.rmtree(osp.join(out_dir, entry.get('folder', '')), ignore_errors=True)
    if osp.isfile(osp.join(out_dir, MANIFEST)):
        os.remove(osp.join(out_dir, MANIFEST))


# ----------------------------------------------------------------------- read
def open_corrupted_set(root: str, cfg: Config, distortions: Sequence[str],
                       severities: Sequence[int], seed: int) -> dict[tuple[str, int], str]:
    """``{(distortion, severity): data root}`` of an export that matches ``cfg`` and ``seed``.

    Raises ``FileNotFoundError`` without a manifest, :class:`StaleExportError` when the
    export was made from other data, loading transforms or seed, or with other
    corruption code, and ``ValueError`` naming the pairs it lacks.
    """
    if not osp.isfile(osp.join(root, MANIFEST)):
        raise FileNotFoundError(f'{root} holds no {MANIFEST}: it is not a corrupted set written '
                                'by tools/misc/export_corrupted.py')
    dataset_cfg = _test_dataset_cfg(cfg)
    manifest = read_json(osp.join(root, MANIFEST))
    exported_seed = (manifest.get('settings') or {}).get('seed')
    if exported_seed != int(seed):
        raise StaleExportError(f'{root} was exported with seed {exported_seed}, the sweep asks '
                               f'for seed {seed}: run with --seed {exported_seed} or export '
                               f'seed {seed}')
    annotations = (manifest.get('settings') or {}).get('annotations', 'copy')
    _check_manifest(root, _settings(cfg, dataset_cfg, seed, annotations), 'read')
    missing = [_pair_id(d, s) for d in distortions for s in severities
               if _finished(root, d, s, seed) is None]
    if missing:
        raise ValueError(f'{root} lacks the finished pair(s) {", ".join(missing)} (it holds '
                         f'{", ".join(manifest.get("pairs") or {}) or "none"}); export them '
                         'with tools/misc/export_corrupted.py')
    return {(d, int(s)): pair_root(root, d, s) for d in distortions for s in severities}


def export_identity(root: str) -> dict:
    """What a sweep's resume key records of the export it reads: its path and settings."""
    manifest = read_json(osp.join(root, MANIFEST)) or {}
    text = json.dumps(manifest.get('settings'), sort_keys=True)
    return dict(path=osp.abspath(root), settings_sha256=hashlib.sha256(text.encode()).hexdigest())
