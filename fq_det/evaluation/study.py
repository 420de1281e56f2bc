"""Robustness studies: several variants x several seeds, trained, swept and compared.

A study config (a Python config file with one ``study`` dict, see ``configs/studies/``)
names the task (``'detection'`` or ``'classification'``), the data, the variants (name ->
config + optional ``cfg_options``; for detection an optional backbone ``pretrain``
classification config), the ``reference`` variant, the ``seeds``, the distortions and
severities. For every ``(variant, seed)`` a *run* goes through resumable stages, each in
``<work_dir>/runs/<variant>/seed_<seed>/``:

1. ``pretrain/`` (detection variants with ``pretrain``): classify the data set's object
   crops with the detector's backbone, export it (``backbone.pth``);
2. ``train/``: train the variant (mmengine ``Runner``, resumed from its last checkpoint);
3. ``sweep/``: the robustness sweep (clean + every (distortion, severity), resumable per
   pair, per-image records for the bootstrap);
4. ``run.json``: the finished run (what it was trained with, timings, alpha statistics,
   training curve).

Each stage writes ``done.json`` with a key of everything that determines it; a stage whose
key differs from the current settings is refused (``overwrite=True`` starts it afresh), and
a finished run whose recorded keys differ (:func:`changed_settings`) is refused by
:func:`run_study` and left out of the report, so no result is reused for another setting.
``seed`` sets the training randomness (data order, initialisation) and the distortion
draws; the data set itself is the same for every run. The report (:func:`report_study`)
aggregates whatever has finished.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import os.path as osp
import re
import shlex
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from fq_det.engine.runs import (final_checkpoint, last_val_top1, loss_curve, pretrain_backbone,
                                run_config, train_to_final)
from fq_det.evaluation.study_dispatch import EXECUTORS, check_resources, dispatch
from fq_det.evaluation.study_errors import StudyError

TASKS = ('detection', 'classification')
#: Starts the line a run prints when it begins a stage (``[stage] train 1200 iterations``);
#: a finished stage is followed by ``reusing <its result file>``.
STAGE = '[stage]'
STUDY_KEYS = ('task', 'data', 'variants', 'reference', 'seeds', 'distortions', 'severities',
              'train', 'pretrain', 'bootstrap', 'seen_distortions', 'name', 'runs', 'cluster')
VARIANT_KEYS = ('config', 'cfg_options', 'pretrain', 'pretrain_cfg_options', 'label',
                'train_as', 'bn_adapt')
DATA_KEYS = ('type', 'root', 'num_train', 'num_test', 'image_size', 'seed')
#: The synthetic data types a study generates: the VOC layout, or the same set as COCO JSON.
SYNTHETIC_DATA = ('synthvoc', 'synthcoco')
#: What the ``train`` key may set, per task (what :func:`_trained` passes to the runner),
#: and the ``pretrain`` and ``bootstrap`` keys.
TRAIN_KEYS = {'detection': ('iters', ), 'classification': ('epochs', )}
PRETRAIN_KEYS = ('epochs', )
BOOTSTRAP_KEYS = ('replicates', 'confidence')
#: Variant, study (``name``) and run-folder (``runs``) names: plain folder names.
NAME_RULE = '[A-Za-z0-9_.-]+, not . or ..'
_NAME = re.compile(r'[A-Za-z0-9_.-]+')

__all__ = ['StudyError', 'Study', 'Variant', 'load_study', 'plan_study', 'run_study', 'run_one',
           'changed_settings', 'repo_relative', 'report_study', 'export_results',
           'portable_paths', 'prepare_data', 'check_name', 'inside_folder', 'STAGE', 'TASKS']


@dataclass(frozen=True)
class Variant:
    name: str
    config: str
    cfg_options: dict = field(default_factory=dict)
    pretrain: str | None = None
    pretrain_cfg_options: dict = field(default_factory=dict)
    label: str = ''
    train_as: str | None = None  # evaluate this other variant's trained model
    bn_adapt: dict | None = None  # BNAdaptHook arguments: test-time BN adaptation


@dataclass
class Study:
    task: str
    data: dict
    variants: dict[str, Variant]
    reference: str
    seeds: tuple[int, ...]
    distortions: tuple[str, ...]
    severities: tuple[int, ...]
    work_dir: str
    config_file: str = ''
    name: str = ''
    train: dict = field(default_factory=dict)
    pretrain: dict = field(default_factory=dict)
    bootstrap: dict = field(default_factory=dict)
    seen_distortions: tuple[str, ...] = ()
    #: where the study's runs go without ``--work-dir``: ``work_dirs/studies/<runs or name>``
    default_work_dir: str = ''
    #: per-run resources of a submitit job (``gpus``, ``cpus``, ``time_min``, ``mem_gb``,
    #: ``partition``): not part of any run's key (they change where it runs, not its result)
    cluster: dict = field(default_factory=dict)

    @property
    def report_dir(self) -> Path:
        """``<work_dir>/reports/<name>``: studies that share runs keep their own reports."""
        return self.inside(Path(self.work_dir) / 'reports' / self.name)

    def run_dir(self, variant: str, seed: int) -> Path:
        return self.inside(Path(self.work_dir) / 'runs' / variant / f'seed_{seed}')

    def inside(self, path: Path) -> Path:
        """``path`` if it lies inside the work folder (``..`` resolved); else StudyError."""
        return inside_folder(path, Path(self.work_dir))

    @property
    def data_root(self) -> Path:
        return Path(self.data['root']) if 'root' in self.data else Path(self.work_dir) / 'data'

    def runs(self) -> list[tuple[str, int]]:
        return [(v, s) for v in self.variants for s in self.seeds]


# ------------------------------------------------------------------ config checks
def _repo_path(path: str, base: Path) -> str:
    """``path`` as given if it exists, else relative to the study config's repository."""
    if osp.isfile(path):
        return osp.abspath(path)
    for root in (base, *base.parents):
        cand = root / path
        if cand.is_file():
            return str(cand)
    return path


def _unknown(given: Mapping, valid: Sequence[str], where: str) -> None:
    extra = sorted(set(given) - set(valid))
    if extra:
        raise StudyError(f'{where}: unknown key(s) {", ".join(map(repr, extra))}; valid keys: '
                         f'{", ".join(valid)}')


def inside_folder(path: Path, folder: Path) -> Path:
    """``path`` if it lies inside ``folder`` once ``..`` and relative parts are resolved
    (lexically: a symlink the user put inside the folder is followed as asked); else a
    StudyError, before anything is written or removed there."""
    if not Path(osp.abspath(path)).is_relative_to(osp.abspath(folder)):
        raise StudyError(f'{path} is outside the study folder {folder}: a study writes and '
                         'removes only inside its work folder')
    return path


def check_name(name: Any, key: str) -> str:
    """``name`` if it is a plain folder name (:data:`NAME_RULE`); else StudyError naming
    ``key``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in ('.', '..'):
        raise StudyError(f'{key} must be a plain folder name ({NAME_RULE}), got {name!r}')
    return name


def _options(spec: Mapping, key: str, where: str) -> dict:
    """``spec[key]`` (``cfg_options`` or ``pretrain_cfg_options``): a dict of dotted keys."""
    options = spec.get(key) or {}
    if not isinstance(options, dict):
        raise StudyError(f'{where}: {key} must be a dict of dotted keys (e.g. '
                         f"{{'model.backbone.depth': 18}}), got {options!r}")
    return dict(options)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _schedule(raw: Mapping, key: str, valid: Sequence[str], where: str) -> dict:
    """The ``train`` / ``pretrain`` dict: only ``valid`` keys, each a positive int."""
    given = raw.get(key) or {}
    if not isinstance(given, dict):
        raise StudyError(f'{where}: {key} must be a dict({"=..., ".join(valid)}=...), '
                         f'got {given!r}')
    _unknown(given, valid, f'{where}: {key}')
    for k, v in given.items():
        if not _positive_int(v):
            raise StudyError(f'{where}: {key}.{k} must be a positive int, got {v!r}')
    return dict(given)


def _check_bootstrap(raw: Mapping, where: str) -> dict:
    given = raw.get('bootstrap') or {}
    if not isinstance(given, dict):
        raise StudyError(f'{where}: bootstrap must be dict(replicates=..., confidence=...), '
                         f'got {given!r}')
    _unknown(given, BOOTSTRAP_KEYS, f'{where}: bootstrap')
    boot = dict(dict(replicates=1000, confidence=0.95), **given)
    reps, conf = boot['replicates'], boot['confidence']
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 0:
        raise StudyError(f'{where}: bootstrap.replicates must be an int >= 0 (0: no bootstrap), '
                         f'got {reps!r}')
    if not isinstance(conf, (int, float)) or isinstance(conf, bool) or not 0 < conf < 1:
        raise StudyError(f'{where}: bootstrap.confidence must be a number in (0, 1), e.g. 0.95, '
                         f'got {conf!r}')
    return boot


def _check_backbone_type(options: Mapping, cfg, where: str) -> None:
    """A ``model.backbone.type`` set by ``cfg_options`` must be registered in mmdet's
    MODELS (types of another scope, ``mmpretrain.X``, are left to that scope)."""
    if 'model.backbone.type' not in options:
        return
    from mmdet.registry import MODELS  # fq_det's backbones registered by the package import

    from fq_det.models.quantizers.builder import unknown_name_message
    given = str(options['model.backbone.type'])
    scope, _, name = given.rpartition('.')
    if (scope or cfg.get('default_scope', 'mmdet')) != 'mmdet' or MODELS.get(name) is not None:
        return
    backbones = sorted(k for k, v in MODELS.module_dict.items() if getattr(v, '__module__', '')
                       .startswith(('mmdet.models.backbones', 'fq_det.models.backbones')))
    raise StudyError(f'{where}: cfg_options model.backbone.type: '
                     + unknown_name_message('backbone type', given, backbones))


def _check_config(path: str, options: dict, where: str) -> None:
    from mmengine.config import Config
    if not osp.isfile(path):
        raise StudyError(f'{where}: config file not found: {path}')
    if not isinstance(options, dict):
        raise StudyError(f'{where}: cfg_options must be a dict of dotted keys, got '
                         f'{type(options).__name__}')
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(copy.deepcopy(options))
    except Exception as err:  # noqa: BLE001  (any parse error is the config's problem)
        raise StudyError(f'{where}: cannot load {path} with cfg_options {options}: {err}') from err
    _check_backbone_type(options, cfg, where)


def _read_study_file(path: str) -> Any:
    """The ``study`` entry of a study config file; its syntax and load errors named."""
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        raise StudyError(f'{path}: syntax error in the study config: {err.msg} (line '
                         f'{err.lineno})' if err.lineno else f'{path}: {err}') from err
    except Exception as err:  # noqa: BLE001  (a NameError, an import in the file, ...)
        raise StudyError(f'{path}: cannot read the study config: {type(err).__name__}: '
                         f'{err}') from err
    if 'study' not in cfg:
        raise StudyError(f'{path} has no `study = dict(...)`')
    if not isinstance(cfg.study, dict):
        raise StudyError(f'{path}: study must be a dict(task=..., variants=..., ...), got '
                         f'{type(cfg.study).__name__}')
    return cfg.study.to_dict()


def load_study(config: str | Mapping, work_dir: str | None = None,
               check_configs: bool = True) -> Study:
    """Read and check a study config (path or dict); every error names the key and the choices."""
    from fq_det.datasets.distortions import check_severity
    from fq_det.evaluation.robustness import resolve_distortions

    if isinstance(config, (str, Path)):
        if not osp.isfile(config):
            raise StudyError(f'study config not found: {config}')
        raw, config_file = _read_study_file(str(config)), osp.abspath(str(config))
    else:
        if not isinstance(config, Mapping):
            raise StudyError(f'study must be a dict(task=..., variants=..., ...), got '
                             f'{type(config).__name__}')
        raw, config_file = copy.deepcopy(dict(config)), ''
    base = Path(config_file).parent if config_file else Path.cwd()
    where = config_file or 'study'
    _unknown(raw, STUDY_KEYS, where)

    task = raw.get('task')
    if task not in TASKS:
        raise StudyError(f'{where}: task must be one of {", ".join(TASKS)}, got {task!r}')
    data = raw.get('data') or {}
    if not isinstance(data, dict):
        raise StudyError(f"{where}: data must be dict(type='synthvoc', ...), "
                         f"dict(type='synthcoco', ...) or dict(type='folder', root=...), "
                         f"got {data!r}")
    data = dict(data)
    _unknown(data, DATA_KEYS, f'{where}: data')
    if data.get('type', 'synthvoc' if 'root' not in data else 'folder') in SYNTHETIC_DATA:
        data.setdefault('type', 'synthvoc')
        data = dict(dict(num_train=2000, num_test=300, image_size=(160, 120), seed=0), **data)
        for k in ('num_train', 'num_test', 'seed'):
            if not isinstance(data[k], int) or data[k] < (0 if k == 'seed' else 1):
                raise StudyError(f'{where}: data.{k} must be an int >= '
                                 f'{0 if k == "seed" else 1}, got {data[k]!r}')
        size = data['image_size']
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
                _positive_int(v) for v in size):
            raise StudyError(f'{where}: data.image_size must be two positive ints (width, '
                             f'height), e.g. (160, 120), got {size!r}')
        data['image_size'] = tuple(size)
    elif data.get('type') == 'folder':
        if not osp.isdir(str(data.get('root', ''))):
            raise StudyError(f'{where}: data.root is not a folder: {data.get("root")!r}')
        data['root'] = osp.abspath(data['root'])
    else:
        raise StudyError(f"{where}: data.type must be 'synthvoc', 'synthcoco' or 'folder', "
                         f"got {data.get('type')!r}")

    variants_raw = raw.get('variants') or {}
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise StudyError(f'{where}: variants must be a non-empty dict name -> dict(config=...)')
    variants = {}
    for name, spec in variants_raw.items():
        check_name(name, f'{where}: variant name')
        if not isinstance(spec, dict):
            raise StudyError(f'{where}: variant {name!r} must be a dict, got {spec!r}')
        _unknown(spec, VARIANT_KEYS, f'{where}: variant {name!r}')
        train_as = spec.get('train_as')
        if train_as is not None:
            trainer = variants_raw.get(train_as)
            if not isinstance(trainer, dict) or trainer.get('train_as'):
                trainers = [k for k, x in variants_raw.items()
                            if isinstance(x, dict) and not x.get('train_as')]
                raise StudyError(f'{where}: variant {name!r}: train_as must name a variant that '
                                 f'trains itself ({", ".join(trainers)}), got {train_as!r}')
            if set(spec) & {'config', 'cfg_options', 'pretrain', 'pretrain_cfg_options'}:
                raise StudyError(f'{where}: variant {name!r} reuses {train_as!r}\'s training '
                                 '(train_as) and cannot set its own config or pretraining')
            spec = dict(trainer, **{k: spec[k] for k in ('label', 'bn_adapt') if k in spec},
                        train_as=train_as)
        if 'config' not in spec:
            raise StudyError(f'{where}: variant {name!r} needs dict(config=...) or '
                             f'dict(train_as=<variant>, ...), got {spec!r}')
        if spec.get('pretrain') and task != 'detection':
            raise StudyError(f'{where}: variant {name!r}: pretrain is for detection studies')
        bn_adapt = spec.get('bn_adapt')
        if bn_adapt is not None:
            from fq_det.engine.bn_adapt import BNAdaptHook
            if not isinstance(bn_adapt, dict):
                raise StudyError(f'{where}: variant {name!r}: bn_adapt must be '
                                 f'dict(prior_strength=N, num_images=n), got {bn_adapt!r}')
            try:
                BNAdaptHook(**bn_adapt)
            except (TypeError, ValueError) as err:
                raise StudyError(f'{where}: variant {name!r}: bn_adapt: {err}') from err
        v = Variant(name=name, config=_repo_path(spec['config'], base),
                    cfg_options=_options(spec, 'cfg_options', f'{where}: variant {name!r}'),
                    pretrain=_repo_path(spec['pretrain'], base) if spec.get('pretrain') else None,
                    pretrain_cfg_options=_options(spec, 'pretrain_cfg_options',
                                                  f'{where}: variant {name!r}'),
                    label=str(spec.get('label') or name), train_as=train_as,
                    bn_adapt=dict(bn_adapt) if bn_adapt is not None else None)
        if check_configs and train_as is None:
            _check_config(v.config, v.cfg_options, f'{where}: variant {name!r}')
            if v.pretrain:
                _check_config(v.pretrain, v.pretrain_cfg_options,
                              f'{where}: variant {name!r} (pretrain)')
        variants[name] = v

    reference = raw.get('reference')
    if reference not in variants:
        raise StudyError(f'{where}: reference must name one of the variants '
                         f'({", ".join(variants)}), got {reference!r}')
    seeds = raw.get('seeds')
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise StudyError(f'{where}: seeds must be a non-empty list of ints >= 0, got {seeds!r}')
    if len(set(seeds)) != len(seeds):
        raise StudyError(f'{where}: seeds repeat: {seeds}')
    severities = raw.get('severities', (1, 3, 5))
    if not isinstance(severities, (list, tuple)):
        raise StudyError(f'{where}: severities must be a list of severities 1-5, e.g. [1, 3, 5], '
                         f'got {severities!r}')
    try:
        distortions = resolve_distortions(raw.get('distortions', 'all'))
        severities = tuple(check_severity(s) for s in severities)
        seen = resolve_distortions(raw.get('seen_distortions') or ())
    except (KeyError, ValueError) as err:
        raise StudyError(f'{where}: {err}') from err
    if not distortions:
        raise StudyError(f"{where}: distortions is empty; give 'all' or a list of names")
    if not severities:
        raise StudyError(f'{where}: severities is empty')
    if not set(seen) <= set(distortions):
        raise StudyError(f'{where}: seen_distortions {sorted(set(seen) - set(distortions))} are '
                         f'not among the distortions {list(distortions)}')
    bootstrap = _check_bootstrap(raw, where)
    cluster = check_resources(raw.get('cluster'), f'{where}: cluster')
    train = _schedule(raw, 'train', TRAIN_KEYS[task], where)
    pretrain = _schedule(raw, 'pretrain', PRETRAIN_KEYS, where)
    for key in ('name', 'runs'):
        if key in raw:
            check_name(raw[key], f'{where}: {key}')
    name = raw.get('name') or (Path(config_file).stem if config_file else 'study')
    default_work_dir = osp.join('work_dirs', 'studies', raw.get('runs') or name)
    work = work_dir or default_work_dir
    return Study(task=task, data=data, variants=variants, reference=reference,
                 seeds=tuple(seeds), distortions=distortions, severities=severities,
                 work_dir=osp.abspath(work), config_file=config_file, name=name,
                 train=train, pretrain=pretrain,
                 bootstrap=bootstrap, seen_distortions=seen,
                 default_work_dir=default_work_dir, cluster=cluster)


# ------------------------------------------------------------------------- helpers
_REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_relative(path: str | None) -> str | None:
    """``path`` relative to the repository when inside it (keys and reports stay valid in
    another clone); None and '' stay as they are."""
    if not path:
        return path
    p = Path(path).resolve()
    return str(p.relative_to(_REPO_ROOT)) if p.is_relative_to(_REPO_ROOT) else str(p)


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:16]


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    """The JSON object in ``path`` (None if there is no file); StudyError naming the file
    when it is not valid JSON or not an object."""
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise StudyError(f'{path} is not valid JSON ({err}); delete it to redo that stage') from err
    if not isinstance(obj, dict):
        raise StudyError(f'{path} holds a JSON {type(obj).__name__}, not the object the study '
                         'wrote; delete it to redo that stage')
    return obj


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stage_done(stage_dir: Path, key: dict, overwrite: bool) -> dict | None:
    """The stage's ``done.json`` if it was made with ``key``; refuse a different one."""
    done = _read_json(stage_dir / 'done.json')
    if done is None:
        return None
    if done.get('key') == key:
        return done
    if overwrite:
        return None
    changed = _changed_keys(key, done.get('key', {}))
    raise StudyError(f'{stage_dir} was made with other settings (changed: {", ".join(changed)}); '
                     'pass --overwrite to redo it, or use another work folder')


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
    with _locked(root.parent / '.data.lock'):
        marker = _read_json(root / 'done.json')
        if marker is not None and marker.get('spec') != json.loads(json.dumps(spec)):
            raise StudyError(f'{root} holds another synthetic set ({marker.get("spec")}, the study '
                             f'asks for {spec}); use another work folder')
        if marker is None:
            make(root, spec['num_train'], spec['num_test'], seed=spec['seed'],
                 image_size=spec['image_size'], workers=max(1, min(4, os.cpu_count() or 1)))
            _write_json(root / 'done.json', dict(spec=spec))
    return root


def _count(n: int, noun: str) -> str:
    return f'{n} {noun}' + ('' if n == 1 else 's')


def _begin_stage(stage_dir: Path, key: dict, overwrite: bool, root: Path | None = None) -> None:
    """Mark ``stage_dir`` as started with ``key`` before it trains.

    An interrupted stage resumes from its checkpoints only if it was started with the same
    key; otherwise it is refused, or with ``overwrite`` emptied first, so no checkpoint of
    other settings is resumed or reused. With ``root`` (the study folder), a ``stage_dir``
    outside it is refused before anything is removed or written.
    """
    if root is not None:
        inside_folder(stage_dir, root)
    previous = (_read_json(stage_dir / 'done.json') or _read_json(stage_dir / 'started.json')
                or {}).get('key')
    if previous is not None and previous != key:
        if not overwrite:
            changed = _changed_keys(key, previous)
            raise StudyError(f'{stage_dir} holds an unfinished run of other settings (changed: '
                             f'{", ".join(changed)}); pass --overwrite to redo it, or use '
                             'another work folder')
        shutil.rmtree(stage_dir)
    _write_json(stage_dir / 'started.json', dict(key=key))


# ------------------------------------------------------------------ stage keys
def _changed_keys(current: Mapping, recorded: Mapping) -> list[str]:
    return sorted(k for k in set(current) | set(recorded) if current.get(k) != recorded.get(k))


def _as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


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


def _pretrain_key(study: Study, v: Variant, seed: int) -> dict:
    """What determines ``v``'s backbone pretraining for ``seed``."""
    return _as_json(dict(data=_data_key(study), config=repo_relative(v.pretrain),
                         config_digest=_file_digest(v.pretrain),
                         cfg_options=v.pretrain_cfg_options, seed=seed,
                         epochs=study.pretrain.get('epochs')))


def _train_key(study: Study, v: Variant, seed: int, backbone_digest: str | None) -> dict:
    """What determines ``v``'s training for ``seed`` (``backbone``: the pretrained backbone's
    digest)."""
    return _as_json(dict(data=_data_key(study), config=repo_relative(v.config),
                         config_digest=_file_digest(v.config), cfg_options=v.cfg_options,
                         seed=seed, schedule=study.train, backbone=backbone_digest))


def changed_settings(study: Study, variant: str, seed: int) -> list[str]:
    """What differs between the finished run ``(variant, seed)`` (its ``run.json``) and the
    study's current settings, e.g. ``['train cfg_options']``; empty when it matches.

    A finished run has no checkpoint to re-check (an exported one has none at all), so
    this compares the training key in its ``run.json`` and the trainer's
    ``pretrain/done.json`` with the keys of the current settings.
    """
    v = study.variants[variant]
    trained_as = v.train_as or variant
    record = _read_json(study.run_dir(variant, seed) / 'run.json') or {}
    changed = []
    if record.get('trained_as', record.get('variant')) != trained_as:  # older: no train_as
        changed.append('train_as')
    if record.get('bn_adapt') != _as_json(v.bn_adapt):
        changed.append('bn_adapt')
    trainer = study.variants[trained_as]
    # the key of the model this run evaluated (older records call it 'key'), not the
    # trainer's current one: a trainer retrained since then leaves this run stale
    recorded = record.get('train_key') or record.get('key') or {}
    backbone = None
    if trainer.pretrain:
        done = _read_json(study.run_dir(trained_as, seed) / 'pretrain' / 'done.json')
        if done is None:
            changed.append('pretrain (no done.json)')
        else:
            changed += [f'pretrain {k}' for k in
                        _changed_keys(_pretrain_key(study, trainer, seed), done.get('key', {}))]
            backbone = done.get('backbone_digest')
    changed += [f'train {k}' for k in
                _changed_keys(_train_key(study, trainer, seed, backbone), recorded)]
    return changed


# ---------------------------------------------------------------------- one run
def _trained(study: Study, variant: str, seed: int, overwrite: bool) -> tuple:
    """Pretrain (if asked) and train ``variant``;
    ``(cfg, checkpoint, pretrained, trained, timings)`` (the stages' ``done.json`` records).

    Under a lock on the run folder, so variants that reuse this training (``train_as``)
    wait for it instead of training it a second time.
    """
    v = study.variants[variant]
    run_dir = study.run_dir(variant, seed)
    data_root = prepare_data(study)
    timings = {}
    with _locked(run_dir / '.train.lock'):
        pretrained = None
        if v.pretrain:
            t = time.time()
            stage = run_dir / 'pretrain'
            key = _pretrain_key(study, v, seed)
            cfg = run_config(v.pretrain, data_root, stage, seed,
                             cfg_options=v.pretrain_cfg_options, epochs=key['epochs'],
                             name=f'{study.name}_{variant}_{seed}_pretrain')
            print(f'{STAGE} pretrain {_count(cfg.train_cfg.max_epochs, "epoch")}', flush=True)
            pretrained = _stage_done(stage, key, overwrite)
            if pretrained is None:
                _begin_stage(stage, key, overwrite, Path(study.work_dir))
                result = pretrain_backbone(cfg)
                pretrained = dict(key=key, backbone_digest=_file_digest(result['backbone']),
                                  top1=result['top1'], epochs=result['epochs'],
                                  curve=result['curve'])
                _write_json(stage / 'done.json', pretrained)
            else:
                print(f'reusing {stage / "backbone.pth"}', flush=True)
            pretrained = dict(pretrained, backbone=str(stage / 'backbone.pth'))
            timings['pretrain_s'] = time.time() - t

        t = time.time()
        stage = run_dir / 'train'
        key = _train_key(study, v, seed, pretrained['backbone_digest'] if pretrained else None)
        detection = study.task == 'detection'
        cfg = run_config(v.config, data_root, stage, seed, cfg_options=v.cfg_options,
                         name=f'{study.name}_{variant}_{seed}',
                         iters=study.train.get('iters') if detection else None,
                         epochs=None if detection else study.train.get('epochs'),
                         backbone=run_dir / 'pretrain' / 'backbone.pth' if pretrained else None,
                         validate=not detection)
        final = final_checkpoint(cfg)
        length = (_count(cfg.train_cfg.max_iters, 'iteration') if 'max_iters' in cfg.train_cfg
                  else _count(cfg.train_cfg.max_epochs, 'epoch'))
        print(f'{STAGE} train {length}', flush=True)
        trained = _stage_done(stage, key, overwrite)
        if trained is None:
            _begin_stage(stage, key, overwrite, Path(study.work_dir))
            train_to_final(cfg)
            trained = dict(key=key, checkpoint_digest=_file_digest(str(final)),
                           curve=loss_curve(stage), top1=last_val_top1(stage))
            _write_json(stage / 'done.json', trained)
        else:
            print(f'reusing {final}', flush=True)
        timings['train_s'] = time.time() - t
    return cfg, str(final), pretrained, trained, timings


def run_one(study: Study, variant: str, seed: int, overwrite: bool = False) -> dict:
    """Pretrain (if asked), train, sweep and summarise one ``(variant, seed)``; resumable.

    A variant with ``train_as`` evaluates that variant's trained model (training it first if
    needed) with its own test-time settings (``bn_adapt``).
    """
    from fq_det.evaluation.study_records import load_sweep_records, save_compact_records
    from fq_det.evaluation.study_report import RECORDS_FILE
    from fq_det.evaluation.study_stages import alpha_report, sweep

    if variant not in study.variants:
        raise StudyError(f'unknown variant {variant!r}; the study has {", ".join(study.variants)}')
    if seed not in study.seeds:
        raise StudyError(f'seed {seed} is not among the study seeds {list(study.seeds)}')
    v = study.variants[variant]
    run_dir = study.run_dir(variant, seed)
    cfg, checkpoint, pretrained, trained, timings = _trained(study, v.train_as or variant, seed,
                                                             overwrite)
    if v.bn_adapt:
        from fq_det.engine.bn_adapt import add_bn_adapt_hook
        add_bn_adapt_hook(cfg, **v.bn_adapt)
    t = time.time()
    pairs = 1 + len(study.distortions) * len(study.severities)
    print(f'{STAGE} sweep {_count(pairs, "pair")}', flush=True)
    results = sweep(study, cfg, checkpoint, run_dir / 'sweep', seed, overwrite)
    timings['sweep_s'] = time.time() - t
    save_compact_records(load_sweep_records(run_dir / 'sweep', study.task, study.distortions,
                                            study.severities, seed),
                         study.task, run_dir / RECORDS_FILE)
    record = dict(variant=variant, seed=seed, trained_as=v.train_as or variant,
                  bn_adapt=v.bn_adapt, train_key=trained['key'], timings_s=timings,
                  pretrain=({k: pretrained.get(k) for k in ('backbone', 'top1', 'epochs', 'curve')}
                            if pretrained else None),
                  checkpoint=checkpoint, curve=trained['curve'], val_top1=trained.get('top1'),
                  alpha=alpha_report(cfg, checkpoint), metric_key=results['metric_key'],
                  sweep=str(run_dir / 'sweep'))
    _write_json(run_dir / 'run.json', record)
    return record


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """This process's stdout and stderr appended to ``log`` for the block, restored after
    (at the descriptor level: progress bars keep the stdout they were created with)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, 'a', buffering=1) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy_of in zip((1, 2), saved):
                os.dup2(copy_of, fd)
                os.close(copy_of)


@contextlib.contextmanager
def _run_claimed(run_dir: Path) -> Iterator[None]:
    """An exclusive, non-blocking ``flock`` on ``<run dir>/.run.lock`` for the block: a
    second process on the same run (another ``run``, a job submitted twice) is refused
    instead of writing into the same folder."""
    path = run_dir / '.run.lock'
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(f'{run_dir} is being run by another process (it holds {path}); '
                             'wait for it to end or stop it') from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run_logged(config_file: str, work_dir: str, variant: str, seed: int, threads: int | None,
                overwrite: bool) -> tuple[str, int, float, str | None]:
    """The entry of every route (a pool process, a submitit job): one run, its output in
    ``<run dir>/log.txt``; ``threads`` torch threads (None: the CPUs this process may use,
    e.g. a SLURM job's allocation)."""
    import torch
    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
    study = load_study(config_file, work_dir, check_configs=False)
    run_dir = study.run_dir(variant, seed)
    log = run_dir / 'log.txt'
    t = time.time()
    with _output_to(log):
        try:
            import fq_det  # noqa: F401  (registers the plugin in the worker)
            with _run_claimed(run_dir):
                run_one(study, variant, seed, overwrite)
            return variant, seed, time.time() - t, None
        except Exception as err:  # noqa: BLE001  (reported by the parent, run by run)
            traceback.print_exc()
            return variant, seed, time.time() - t, f'{type(err).__name__}: {err} (log: {log})'


#: A local submitit job's time limit when none is given (submitit's own is 2 minutes).
LOCAL_TIME_MIN = 7 * 24 * 60


def _run_resources(study: Study, executor: str, jobs: int | None, threads: int | None,
                   given: Mapping | None) -> dict:
    """The checked arguments of :func:`run_study`: a submitit job's resources, the flags
    (``given``) over the study's ``cluster``."""
    if executor not in EXECUTORS:
        raise StudyError(f'--executor must be one of {", ".join(EXECUTORS)}, got {executor!r}')
    if not study.config_file:
        raise StudyError('run_study needs a study loaded from a config file (worker processes '
                         're-read it)')
    if jobs is not None and (isinstance(jobs, bool) or jobs < 1):
        raise StudyError(f'--jobs must be >= 1, got {jobs}')
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise StudyError(f'--threads must be >= 1 (default: cores / jobs), got {threads}')
    flags = check_resources(given, 'run resources')
    if executor == 'pool':
        if flags:
            named = ', '.join('--' + key.replace('_', '-') for key in flags)
            raise StudyError(f'{named} set the resources of a submitit job: they need '
                             '--executor local or slurm')
        return {}
    resources = dict(study.cluster, **flags)
    if executor == 'slurm' and shutil.which('srun') is None:
        raise StudyError('--executor slurm: no srun on this machine; submit from a machine of '
                         'the SLURM cluster (or use --executor local, or plan for another '
                         'scheduler)')
    if executor == 'slurm' and 'time_min' not in resources:
        raise StudyError('--executor slurm needs a time limit per run: --time-min MINUTES, or '
                         "cluster=dict(time_min=...) in the study config (submitit's default, "
                         '5 minutes, would stop the runs)')
    resources.setdefault('time_min', LOCAL_TIME_MIN)
    return resources


def _unfinished_runs(study: Study, only: Sequence[tuple[str, int]] | None, overwrite: bool,
                     report: bool) -> tuple[list[tuple[str, int]], int]:
    """The runs to do (trainers first) and how many were asked for; refuses unknown runs,
    unwritable folders and finished runs of other settings before any work."""
    runs = list(only) if only else study.runs()
    for v, s in runs:
        if v not in study.variants or s not in study.seeds:
            raise StudyError(f'{v}:{s} is not a run of this study (variants '
                             f'{", ".join(study.variants)}; seeds {list(study.seeds)})')
    _check_writable(Path(study.work_dir))
    if report:
        _check_writable(study.report_dir, 'report folder')
    prepare_data(study)
    finished = {r for r in runs if (study.run_dir(*r) / 'run.json').is_file()}
    stale = {} if overwrite else {r: changed_settings(study, *r) for r in runs if r in finished}
    stale = {r: changed for r, changed in stale.items() if changed}
    if stale:
        listed = '; '.join(f'{v} seed {s} (changed: {", ".join(c)})' for (v, s), c in stale.items())
        only = ' '.join(f'{v}:{s}' for v, s in stale)
        raise StudyError(f'finished runs in {study.work_dir} made with other settings: {listed}. '
                         f'Redo them with --overwrite --only {only}, or use another work folder')
    todo = [r for r in runs if overwrite or r not in finished]
    for r in sorted(finished - set(todo)):
        _rebuild_records(study, *r)
    todo.sort(key=lambda r: study.variants[r[0]].train_as is not None)  # trainers first
    return todo, len(runs)


def run_study(study: Study, jobs: int | None = None,
              only: Sequence[tuple[str, int]] | None = None, overwrite: bool = False,
              threads: int | None = None, report: bool = True, executor: str = 'pool',
              resources: Mapping | None = None) -> list[str]:
    """Run the study's unfinished runs; return the failures, one line each.

    ``executor``: ``'pool'``, ``jobs`` processes here (default 1); ``'local'`` / ``'slurm'``,
    one submitit job per run, ``jobs`` at a time (default 1 here, all at once on SLURM),
    with ``resources`` (``gpus``, ``cpus``, ``time_min``, ``mem_gb``, ``partition``) over
    the study's ``cluster``; job files in ``<work_dir>/jobs/``. Every route runs
    :func:`_run_logged`. Each run uses ``threads`` torch threads (default: ``cpus``, else
    the cores divided by ``jobs`` here, the job's CPUs on SLURM). With ``report`` (the
    report follows), the report folder is checked to be writable first.
    """
    from mmengine.utils import ProgressBar

    resources = _run_resources(study, executor, jobs, threads, resources)
    todo, total = _unfinished_runs(study, only, overwrite, report)
    jobs = min(jobs or (len(todo) if executor == 'slurm' else 1), max(1, len(todo)))
    route = 'processes' if executor == 'pool' else f'{executor} submitit jobs'
    print(f'study {study.name}: {total - len(todo)}/{total} runs finished, {len(todo)} to run, '
          f'{jobs} at a time ({route}); logs in {study.work_dir}/runs/<variant>/seed_<seed>/'
          'log.txt', flush=True)
    if not todo:
        return []
    threads = threads or resources.get('cpus') or (
        None if executor == 'slurm' else max(1, (os.cpu_count() or 1) // jobs))
    calls = [(study.config_file, study.work_dir, v, s, threads, overwrite) for v, s in todo]
    outcomes = dispatch(executor, _run_logged, calls, jobs=jobs, resources=resources,
                        folder=study.inside(Path(study.work_dir) / 'jobs'), name=study.name)
    failures = []
    bar = ProgressBar(len(todo), file=sys.stdout)
    with contextlib.closing(outcomes):
        for call, result, why in outcomes:
            variant, seed = call[2], call[3]
            error = result[3] if result else why
            bar.update()
            state = f'failed: {error}' if error else f'done in {result[2]:.0f} s'
            sys.stdout.write(f'\n  {variant} seed {seed}: {state}\n')
            sys.stdout.flush()
            if error:
                failures.append(f'{variant} seed {seed}: {error}')
    return failures


def _rebuild_records(study: Study, variant: str, seed: int) -> bool:
    """Write a finished run's missing ``records.npz`` again from ``sweep/per_image/``;
    False (and a line saying why) when those records are not there either."""
    from fq_det.evaluation.study_records import load_sweep_records, save_compact_records
    from fq_det.evaluation.study_report import RECORDS_FILE
    run_dir = study.run_dir(variant, seed)
    target = run_dir / RECORDS_FILE
    if target.is_file():
        return True
    try:
        records = load_sweep_records(run_dir / 'sweep', study.task, study.distortions,
                                     study.severities, seed)
    except (FileNotFoundError, ValueError) as err:
        print(f'{variant} seed {seed}: no {RECORDS_FILE}, and it cannot be rebuilt ({err}); '
              'the report lists it as missing from the within-run bootstrap', flush=True)
        return False
    save_compact_records(records, study.task, target)
    print(f'{variant} seed {seed}: rebuilt {target} from {run_dir / "sweep" / "per_image"}',
          flush=True)
    return True


def _check_writable(folder: Path, what: str = 'study folder') -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f'.write_test.{os.getpid()}'
        probe.write_text('')
        probe.unlink()
    except OSError as err:
        raise StudyError(f'cannot write to the {what} {folder}: {err.strerror or err}') from err


def plan_study(study: Study, python: str = 'python',
               tool: str = 'tools/robustness_study.py') -> list[str]:
    """One shell command per run (for any scheduler), each resumable on a shared folder;
    paths and names are quoted for the shell."""
    q = shlex.quote
    cfg = q(study.config_file) if study.config_file else '<study config>'
    return [f'{q(python)} {q(tool)} run {cfg} --work-dir {q(study.work_dir)} --only {q(f"{v}:{s}")}'
            for v, s in study.runs()]


#: What :func:`export_results` copies: the finished runs' small files and the reports.
EXPORTED = ('run.json', 'records.npz', 'sweep/results.json', 'sweep/results.md',
            'pretrain/done.json', 'train/done.json')


def export_results(study: Study, dest: str | Path) -> list[Path]:
    """Copy the finished runs' small result files and the reports to ``dest`` (same layout).

    What is copied is what :func:`report_study` reads and what tells :func:`run_study`
    that a run is finished, so a copy in another clone's study folder resumes from there.
    Absolute paths in the copied text files are written relative to where they point:
    ``configs/...`` for files in the repository, the study's default folder
    (``work_dirs/studies/<runs>/...``) for its work folder, so the copies name nothing
    outside a clone.
    """
    dest, src = Path(dest), Path(study.work_dir)
    home = (study.default_work_dir or osp.join('work_dirs', 'studies', src.name)) + os.sep
    prefixes = {str(src) + os.sep: home, str(src.resolve()) + os.sep: home,
                str(_REPO_ROOT) + os.sep: ''}
    files = []
    for variant, seed in study.runs():
        run_dir = study.run_dir(variant, seed)
        if (run_dir / 'run.json').is_file():
            files += [run_dir / rel for rel in EXPORTED if (run_dir / rel).is_file()]
    if study.report_dir.is_dir():
        files += [f for f in study.report_dir.iterdir() if f.is_file()]
    copied = []
    for f in files:
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix in ('.json', '.md'):
            target.write_text(portable_paths(f.read_text(), prefixes))
        else:
            shutil.copy2(f, target)
        copied.append(target)
    return copied


def portable_paths(text: str, prefixes: Mapping[str, str]) -> str:
    """``text`` with every absolute path prefix in ``prefixes`` replaced by its value."""
    for prefix in sorted(prefixes, key=len, reverse=True):
        text = text.replace(prefix, prefixes[prefix])
    return text


def report_study(study: Study, out_dir: str | None = None) -> dict:
    """Aggregate the finished runs into ``study.json``, ``study.md`` and ``study.png``."""
    from fq_det.evaluation.study_report import build_report
    return build_report(study, Path(out_dir) if out_dir else study.report_dir)

