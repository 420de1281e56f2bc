"""A study's folder: the data it generates, each run's folder and the bookkeeping of its
stages, and the keys that say which settings made a stage.

Layout (``<work_dir>``)::

    data/                          the synthetic set (generated once, under a lock)
    runs/<variant>/seed_<seed>/    one run
        pretrain/  train/          a stage: started.json (key) -> done.json (key + result)
        sweep/                     the robustness sweep (its own resume key)
        records.npz                compact per-image records (RECORDS_FILE)
        run.json                   the finished run
    reports/<study name>/          the report

A stage's key holds everything that determines its result: the data, the merged config's
digest (the config file after its ``_base_`` files and the variant's ``cfg_options``: a
rename or a comment edit changes nothing, a ``_base_`` edit does), the seed and the
schedule. The keys record settings, not the code's revision.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from fq_det.studies.config import SYNTHETIC_DATA, Study, Variant, inside_folder, repo_relative
from fq_det.studies.errors import StudyError
from fq_det.utils.io import atomic_write_json, file_lock, read_json
from fq_det.utils.keys import as_json, changed_keys

#: Starts the line a run prints when it begins a stage (``[stage] train 1200 iterations``);
#: a finished stage is followed by ``reusing <its result file>``.
STAGE = '[stage]'
#: Per run: the compact per-image records of its sweep.
RECORDS_FILE = 'records.npz'
RUN_RECORD = 'run.json'
DONE, STARTED = 'done.json', 'started.json'

__all__ = ['STAGE', 'RECORDS_FILE', 'RUN_RECORD', 'read_record', 'write_record', 'run_stage',
           'prepare_data', 'pretrain_key', 'train_key', 'changed_settings',
           'merged_config_digest', 'count']


def read_record(path: Path) -> dict | None:
    """The JSON object a study wrote at ``path`` (None if there is none); a StudyError
    naming the file when it is not valid JSON or not an object."""
    return read_json(path, error=StudyError, remedy='delete it to redo that stage')


def write_record(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, indent=2, default=float)


def count(n: int, noun: str) -> str:
    return f'{n} {noun}' + ('' if n == 1 else 's')


def run_stage(stage_dir: Path, key: dict, overwrite: bool, work: Callable[[], dict],
              root: Path) -> tuple[dict, bool]:
    """``(record, reused)``: the stage's ``done.json`` if it was made with ``key``; else
    ``work()`` is run and ``dict(key=key, **work())`` written as ``done.json``.

    A stage made (or, per ``started.json``, begun) with another key is refused, or with
    ``overwrite`` emptied first, so no checkpoint of other settings is resumed or reused; an
    interrupted stage of the same key resumes. ``stage_dir`` must lie inside ``root`` (the
    study folder) before anything is removed or written.
    """
    inside_folder(stage_dir, root)
    done = read_record(stage_dir / DONE)
    if done is not None and done.get('key') == key:
        return done, True
    previous = (done or read_record(stage_dir / STARTED) or {}).get('key')
    if previous is not None and previous != key:
        if not overwrite:
            state = 'was made with' if done is not None else 'holds an unfinished run of'
            raise StudyError(f'{stage_dir} {state} other settings (changed: '
                             f'{", ".join(changed_keys(key, previous))}); pass --overwrite to '
                             'redo it, or use another work folder')
        shutil.rmtree(stage_dir)
    write_record(stage_dir / STARTED, dict(key=key))
    record = dict(key=key, **work())
    write_record(stage_dir / DONE, record)
    return record, False


def prepare_data(study: Study) -> Path:
    """Generate the study's synthetic set (VOC or COCO layout) once (under a lock; no-op
    when present)."""
    from fq_det.datasets.synthetic_voc import make_synthetic_coco, make_synthetic_voc
    root = study.data_root
    if study.data['type'] not in SYNTHETIC_DATA:
        return root
    spec = {k: study.data[k] for k in ('num_train', 'num_test', 'image_size', 'seed')}
    make = make_synthetic_voc
    if study.data['type'] == 'synthcoco':
        spec['format'] = 'coco'  # (the VOC spec keeps its keys: existing folders match)
        make = make_synthetic_coco
    with file_lock(root.parent / '.data.lock'):
        marker = read_record(root / DONE)
        if marker is not None and marker.get('spec') != json.loads(json.dumps(spec)):
            raise StudyError(f'{root} holds another synthetic set ({marker.get("spec")}, the study '
                             f'asks for {spec}); use another work folder')
        if marker is None:
            make(root, spec['num_train'], spec['num_test'], seed=spec['seed'],
                 image_size=spec['image_size'], workers=max(1, min(4, os.cpu_count() or 1)))
            write_record(root / DONE, dict(spec=spec))
    return root


# ------------------------------------------------------------------ stage keys
def _data_key(study: Study) -> dict:
    """A synthetic set's recipe, or a folder's root (relative when inside the repository, so
    exported keys stay valid in another clone) and the content digest of its trainval and
    test splits (:func:`~fq_det.datasets.content_digest.voc_content_digest`)."""
    data = dict(study.data)
    if 'root' in data:
        from fq_det.datasets.content_digest import voc_content_digest
        data['content_sha256'] = {
            split: voc_content_digest(data['root'], f'VOC2007/ImageSets/Main/{split}.txt',
                                      'VOC2007/')
            for split in ('trainval', 'test')
            if osp.isfile(osp.join(data['root'], f'VOC2007/ImageSets/Main/{split}.txt'))}
        data['root'] = repo_relative(data['root'])
    return data


@functools.lru_cache(maxsize=256)
def _merged_digest(path: str, options_json: str, mtime_ns: int) -> str:
    from mmengine.config import Config

    from fq_det.evaluation.sweep_store import config_digest
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(copy.deepcopy(json.loads(options_json)))
    return config_digest(cfg, keys=None)[:16]


def merged_config_digest(path: str, options: Mapping) -> str:
    """The digest of what a run reads: ``path`` after its ``_base_`` files with ``options``
    (``cfg_options``) merged, without data roots and loader worker settings
    (:func:`~fq_det.evaluation.sweep_store.config_digest` over every key). Cached per
    process by the file's modification time."""
    options_json = json.dumps(as_json(dict(options)), sort_keys=True)
    return _merged_digest(osp.abspath(path), options_json, os.stat(path).st_mtime_ns)


def pretrain_key(study: Study, v: Variant, seed: int) -> dict:
    """What determines ``v``'s backbone pretraining for ``seed``."""
    return as_json(dict(data=_data_key(study),
                         config=merged_config_digest(v.pretrain, v.pretrain_cfg_options),
                         seed=seed, epochs=study.pretrain.get('epochs')))


def train_key(study: Study, v: Variant, seed: int, backbone_digest: str | None) -> dict:
    """What determines ``v``'s training for ``seed`` (``backbone``: the pretrained backbone's
    digest)."""
    return as_json(dict(data=_data_key(study),
                         config=merged_config_digest(v.config, v.cfg_options),
                         seed=seed, schedule=study.train, backbone=backbone_digest))


def changed_settings(study: Study, variant: str, seed: int) -> list[str]:
    """What differs between the finished run ``(variant, seed)`` (its ``run.json``) and the
    study's current settings, e.g. ``['train config']``; empty when it matches.

    A finished run has no checkpoint to re-check (an exported one has none at all), so
    this compares the training key in its ``run.json`` (the key of the model it evaluated,
    not the trainer's current one: a trainer retrained since leaves it stale) and the
    trainer's ``pretrain/done.json`` with the keys of the current settings.
    """
    v = study.variants[variant]
    trained_as = v.train_as or variant
    record = read_record(study.run_dir(variant, seed) / RUN_RECORD) or {}
    changed = []
    if record.get('trained_as') != trained_as:
        changed.append('train_as')
    if record.get('bn_adapt') != as_json(v.bn_adapt):
        changed.append('bn_adapt')
    trainer = study.variants[trained_as]
    backbone = None
    if trainer.pretrain:
        done = read_record(study.run_dir(trained_as, seed) / 'pretrain' / DONE)
        if done is None:
            changed.append('pretrain (no done.json)')
        else:
            changed += [f'pretrain {k}' for k in
                        changed_keys(pretrain_key(study, trainer, seed), done.get('key', {}))]
            backbone = done.get('backbone_digest')
    changed += [f'train {k}' for k in
                changed_keys(train_key(study, trainer, seed, backbone),
                             record.get('train_key') or {})]
    return changed
