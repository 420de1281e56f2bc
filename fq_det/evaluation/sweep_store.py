"""What a robustness sweep keeps on disk, for detection and classification alike.

``<out_dir>/partial.json`` holds the finished evaluations and the *resume key*, the
identity of everything that determines a result::

    {"resume_key": {"task": "detection",
                    "checkpoint": {"path": abs path, "size": bytes, "sha256": hex},
                    "config_sha256": hex,     # what a test run reads of the config (config_digest)
                    "data": [{"data_root": abs path, "ann_file": path, "ann_sha256": hex}],
                    "corrupted_root": {"path", "settings_sha256"}},  # a sweep read from an export
     "records": {"clean/0/0": {metric: value}, "<distortion>/<severity>/<seed>": {...}}}

A record's id holds the distortion seed, so results of one seed are never read as
another's. A sweep whose resume key differs from the one on disk stops with
:class:`StaleResultsError` (what changed, and ``--overwrite`` / another out-dir);
``overwrite=True`` deletes the previous results first.

Concurrent sweeps into one out-dir: every read-merge-write of ``partial.json`` (and the
``results.json`` written from it) happens under an exclusive ``fcntl.flock`` on
``<out_dir>/.lock``, merging with what is on disk, so no finished pair is lost. Files
are written atomically (a temporary file in the same folder, then ``os.replace``): an
interruption leaves the previous complete file. A file that is not valid JSON raises
:class:`SweepFileError` naming it.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import os.path as osp
import re
import shutil
from typing import Callable

from mmengine.config import Config

from fq_det.utils.io import atomic_write_text, check_writable, file_lock, read_json, sha256_file
from fq_det.utils.keys import changed_keys

__all__ = ['SweepStore', 'StaleResultsError', 'SweepFileError', 'OutDirNotWritableError',
           'resume_key', 'checkpoint_identity', 'config_digest', 'record_id', 'check_out_dir',
           'RESULTS_JSON', 'RESULTS_MD', 'PARTIAL_JSON', 'LOCK_FILE', 'PER_IMAGE_DIR',
           'TEST_CONFIG_KEYS', 'IGNORED_LOADER_KEYS']

RESULTS_JSON = 'results.json'
RESULTS_MD = 'results.md'
PARTIAL_JSON = 'partial.json'
LOCK_FILE = '.lock'
PER_IMAGE_DIR = 'per_image'

#: The config entries a test run reads (after overrides): they enter :func:`config_digest`.
#: Training and validation settings, logging and paths do not; what training made of them
#: is in the checkpoint, identified by its content. ``custom_hooks`` do: test-time BN
#: adaptation (``BNAdaptHook``) changes every result.
TEST_CONFIG_KEYS = ('model', 'test_dataloader', 'test_evaluator', 'test_cfg', 'default_scope',
                    'custom_imports', 'custom_hooks', 'data_check', 'runner_type')
#: Dataloader keys that do not change a result (distortions are seeded per image).
IGNORED_LOADER_KEYS = ('num_workers', 'persistent_workers', 'pin_memory', 'prefetch_factor')
_ADDRESS = re.compile(r' at 0x[0-9a-fA-F]+')


class StaleResultsError(ValueError):
    """The out-dir holds results of another checkpoint, config, data set or task."""


class SweepFileError(ValueError):
    """A sweep file (results.json, partial.json) is not what the sweep wrote."""


class OutDirNotWritableError(PermissionError):
    """The out-dir cannot be created or written."""


# ------------------------------------------------------------------------- files
def _read_sweep_file(path: str) -> dict | None:
    return read_json(path, error=SweepFileError,
                     remedy='delete it, or re-run with --overwrite (overwrite=True) to start '
                     'this out-dir afresh')


def check_out_dir(out_dir: str) -> None:
    """Create ``out_dir`` if needed and check that a file can be written in it."""
    check_writable(out_dir, 'out-dir', error=OutDirNotWritableError)


# ---------------------------------------------------------------------- identity
def checkpoint_identity(checkpoint: str) -> dict:
    """``{'path', 'size', 'sha256'}`` of a checkpoint file (its whole content hashed)."""
    return dict(path=osp.abspath(checkpoint), size=osp.getsize(checkpoint),
                sha256=sha256_file(checkpoint))


def _strip(node, in_loader: bool = False):
    """The config tree without the keys that do not change a result."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == 'data_root' or (in_loader and k in IGNORED_LOADER_KEYS):
                continue
            out[k] = _strip(v, in_loader or str(k).endswith('_dataloader'))
        return out
    if isinstance(node, (list, tuple)):
        return [_strip(v, in_loader) for v in node]
    return node


def _stable_default(obj) -> str:
    if isinstance(obj, type):
        return f'{obj.__module__}.{obj.__qualname__}'
    return _ADDRESS.sub('', repr(obj))


def config_digest(cfg: Config, keys: tuple[str, ...] | None = TEST_CONFIG_KEYS) -> str:
    """sha256 of the config's ``keys`` (default :data:`TEST_CONFIG_KEYS`; None: every key but
    the ``_``-prefixed helper variables of config files, which no runner reads) after
    overrides, without the data roots (compared on their own) and :data:`IGNORED_LOADER_KEYS`."""
    tree = {k: v for k, v in copy.deepcopy(cfg.to_dict()).items()
            if (k in keys if keys is not None else not k.startswith('_'))}
    text = json.dumps(_strip(tree), sort_keys=True, default=_stable_default)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def _file_sha256(path: str) -> str | None:
    return sha256_file(path) if osp.isfile(path) else None


def data_identity(cfg: Config) -> list[dict]:
    """Data root and annotation file (with its sha256) of every test data set of ``cfg``;
    for a VOC-layout set also ``content_sha256``, the digest of every annotation and image
    its split names (:func:`~fq_det.datasets.content_digest.voc_content_digest`; for a COCO
    annotation file every image it lists, :func:`~fq_det.datasets.content_digest.coco_content_digest`),
    so a set regenerated in place under the same ids is seen as changed."""
    from fq_det.datasets.content_digest import coco_content_digest, voc_content_digest
    from fq_det.datasets.data_check import leaf_datasets
    loader = cfg.get('test_dataloader') or {}
    out = []
    for leaf in leaf_datasets(loader.get('dataset') or {}):
        root = leaf.get('data_root') or cfg.get('data_root') or ''
        ann = leaf.get('ann_file') or ''
        ann_path = osp.join(root, ann) if ann else ''
        ident = dict(data_root=osp.abspath(root) if root else '', ann_file=ann,
                     ann_sha256=_file_sha256(ann_path) if ann_path else None)
        if ann_path.endswith('.txt') and osp.isfile(ann_path):  # a VOC split file
            ident['content_sha256'] = voc_content_digest(
                root, ann, (leaf.get('data_prefix') or {}).get('sub_data_root', ''),
                leaf.get('img_subdir', 'JPEGImages'), leaf.get('ann_subdir', 'Annotations'))
        elif ann_path.endswith('.json') and osp.isfile(ann_path):  # a COCO annotation file
            ident['content_sha256'] = coco_content_digest(
                ann_path, osp.join(root, (leaf.get('data_prefix') or {}).get('img', '')))
        out.append(ident)
    return out


def resume_key(task: str, cfg: Config, checkpoint: str) -> dict:
    """Everything that determines a sweep's results, except the distortion seed (in each
    record's id) and the metric summarised (chosen from the stored metrics)."""
    return dict(task=task, checkpoint=checkpoint_identity(checkpoint),
                config_sha256=config_digest(cfg), data=data_identity(cfg))


def record_id(distortion: str | None, severity: int, seed: int) -> str:
    """``'clean/0/0'`` or ``'<distortion>/<severity>/<seed>'``."""
    return 'clean/0/0' if distortion is None else f'{distortion}/{severity}/{seed}'


def _short(ident: dict) -> str:
    return f'{ident.get("path")} ({ident.get("size")} bytes, sha256 {str(ident.get("sha256"))[:12]})'


def _checkpoint_change(old: dict, new: dict) -> list[str]:
    lines = []
    if old.get('path') != new.get('path'):
        lines.append(f'checkpoint path: {old.get("path")} -> {new.get("path")}')
    if (old.get('size'), old.get('sha256')) != (new.get('size'), new.get('sha256')):
        lines.append(f'checkpoint content: {_short(old)} -> {_short(new)} (the file was replaced, '
                     'e.g. by a new training)')
    return lines


def _data_change(old: list, new: list) -> list[str]:
    o_roots, n_roots = [d.get('data_root') for d in old], [d.get('data_root') for d in new]
    if o_roots != n_roots:
        return [f'data root: {", ".join(map(str, o_roots))} -> {", ".join(map(str, n_roots))}']
    if [d.get('ann_sha256') for d in old] != [d.get('ann_sha256') for d in new]:
        return ['test annotations: the annotation file(s) changed '
                f'({", ".join(str(d.get("ann_file")) for d in new)})']
    return ['test data content: the annotations or images the split names changed '
            '(e.g. the data set was regenerated in place under the same ids)']


#: How a changed entry of the resume key is described (old value, new value -> lines).
_DESCRIBE = {
    'task': lambda o, n: [f'task: {o} -> {n}'],
    'checkpoint': lambda o, n: _checkpoint_change(o or {}, n or {}),
    'data': lambda o, n: _data_change(o or [], n or []),
    'config_sha256': lambda o, n: ['config after overrides (--cfg-options and the like): '
                                   f'sha256 {str(o)[:12]} -> {str(n)[:12]}'],
}


def describe_changes(old: dict, new: dict) -> list[str]:
    """One line per part of the resume key that differs (:func:`~fq_det.utils.keys.changed_keys`,
    each described in the words of :data:`_DESCRIBE`)."""
    changed = changed_keys(new, old)
    lines = [line for key in _DESCRIBE if key in changed
             for line in _DESCRIBE[key](old.get(key), new.get(key))]
    lines += [f'{key}: {json.dumps(old.get(key), sort_keys=True)} -> '
              f'{json.dumps(new.get(key), sort_keys=True)}' for key in changed if key not in _DESCRIBE]
    return lines or ['resume key: ' + json.dumps(old, sort_keys=True) + ' -> '
                     + json.dumps(new, sort_keys=True)]


# ------------------------------------------------------------------------ store
class SweepStore:
    """The finished evaluations of one out-dir, shared safely between processes.

    Args:
        out_dir: the sweep's folder (created; must be writable).
        key: :func:`resume_key` of this sweep.
        overwrite: delete what a previous sweep left in ``out_dir`` instead of refusing
            results of another key.
    """

    def __init__(self, out_dir: str, key: dict, overwrite: bool = False) -> None:
        self.out_dir = str(out_dir)
        self.key = json.loads(json.dumps(key))  # as it reads back from disk
        self.overwrite = overwrite
        self.partial_path = osp.join(self.out_dir, PARTIAL_JSON)
        self.results_path = osp.join(self.out_dir, RESULTS_JSON)
        self.records: dict[str, dict] = {}

    def locked(self):
        """An exclusive ``flock`` on ``<out_dir>/.lock`` (waits for the other writer)."""
        return file_lock(osp.join(self.out_dir, LOCK_FILE))

    def open(self) -> 'SweepStore':
        """Refuse or clear results of another key, read the records (the caller checked
        that the out-dir is writable: :func:`check_out_dir`)."""
        with self.locked():
            if self.overwrite:
                for name in (PARTIAL_JSON, RESULTS_JSON, RESULTS_MD):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(osp.join(self.out_dir, name))
                shutil.rmtree(osp.join(self.out_dir, PER_IMAGE_DIR), ignore_errors=True)
            data = self._read_checked()
            if data is None:
                data = dict(resume_key=self.key, records={})
                atomic_write_text(self.partial_path, json.dumps(data, indent=1))
            self.records = data['records']
        return self

    def _read_checked(self) -> dict | None:
        data = _read_sweep_file(self.partial_path)
        if data is None:
            if osp.isfile(self.results_path):
                raise StaleResultsError(
                    f'{self.results_path} has no {PARTIAL_JSON} beside it, so nothing says which '
                    'checkpoint, config and data it belongs to; its pairs are not reused: start '
                    'fresh with --overwrite (overwrite=True) or use another out_dir (--out-dir)')
            return None
        if not isinstance(data.get('records'), dict) or 'resume_key' not in data:
            raise SweepFileError(f'{self.partial_path} lacks "resume_key"/"records": it was not '
                                 'written by a sweep; delete it or re-run with --overwrite')
        if data['resume_key'] != self.key:
            changes = describe_changes(data['resume_key'], self.key)
            raise StaleResultsError(
                f'{self.out_dir} holds results of another sweep. What changed:\n  '
                + '\n  '.join(changes) + '\nIts pairs are not reused: start fresh with '
                '--overwrite (overwrite=True) or use another out_dir (--out-dir).')
        return data

    def refresh(self) -> dict[str, dict]:
        """Re-read the records (a concurrent sweep may have added some)."""
        with self.locked():
            data = self._read_checked()
            self.records = data['records'] if data else {}
        return self.records

    def add(self, rid: str, metrics: dict,
            write_results: Callable[[dict[str, dict]], None] | None = None) -> dict[str, dict]:
        """Merge one record into ``partial.json`` on disk; then ``write_results(records)``,
        still under the lock, so ``results.json`` always reflects every finished pair."""
        with self.locked():
            data = self._read_checked() or dict(resume_key=self.key, records={})
            data['records'][rid] = metrics
            atomic_write_text(self.partial_path, json.dumps(data, indent=1))
            self.records = data['records']
            if write_results is not None:
                write_results(self.records)
        return self.records
