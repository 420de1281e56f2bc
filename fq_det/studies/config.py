"""A study config and its checks: the ``study = dict(...)`` of ``configs/studies/*.py`` read
into a :class:`Study` of :class:`Variant` s, every bad value named with the valid choices."""
from __future__ import annotations

import copy
import os.path as osp
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from fq_det.datasets.distortion_route import TASKS
from fq_det.studies.dispatch import check_resources
from fq_det.studies.errors import StudyError

STUDY_KEYS = ('task', 'data', 'variants', 'reference', 'seeds', 'distortions', 'severities',
              'train', 'pretrain', 'bootstrap', 'seen_distortions', 'name', 'runs', 'cluster')
VARIANT_KEYS = ('config', 'cfg_options', 'pretrain', 'pretrain_cfg_options', 'label',
                'train_as', 'bn_adapt')
DATA_KEYS = ('type', 'root', 'num_train', 'num_test', 'image_size', 'seed')
#: The synthetic data types a study generates: the VOC layout, or the same set as COCO JSON.
SYNTHETIC_DATA = ('synthvoc', 'synthcoco')
#: What the ``train`` key may set, per task (what the train stage passes to the runner),
#: and the ``pretrain`` and ``bootstrap`` keys.
TRAIN_KEYS = {'detection': ('iters', ), 'classification': ('epochs', )}
PRETRAIN_KEYS = ('epochs', )
BOOTSTRAP_KEYS = ('replicates', 'confidence')
#: Variant, study (``name``) and run-folder (``runs``) names: plain folder names.
NAME_RULE = '[A-Za-z0-9_.-]+, not . or ..'
_NAME = re.compile(r'[A-Za-z0-9_.-]+')


__all__ = ['Study', 'Variant', 'load_study', 'check_name', 'inside_folder', 'repo_relative',
           'TASKS', 'NAME_RULE']


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
    #: dotted overrides of the study file's values (``load_study(options=...)``)
    options: dict = field(default_factory=dict)

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



REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_relative(path: str | None) -> str | None:
    """``path`` relative to the repository when inside it (keys and reports stay valid in
    another clone); None and '' stay as they are."""
    if not path:
        return path
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)


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


def _read_study_file(path: str, options: Mapping) -> Any:
    """The ``study`` entry of a study config file with ``options`` (dotted keys below
    ``study``, as ``--cfg-options`` gives them) merged; its syntax and load errors named."""
    from mmengine.config import Config
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict({f'study.{k}': v for k, v in options.items()})
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


def load_study(config: str | Mapping, work_dir: str | None = None, check_configs: bool = True,
               options: Mapping | None = None) -> Study:
    """Read and check a study config (path or dict); every error names the key and the choices.

    ``options``: dotted keys below ``study`` that override the file's values (e.g.
    ``{'data.num_train': 40, 'train.iters': 10}``); the study keeps them, so the worker
    processes that re-read the file see the same study.
    """
    options = dict(options or {})
    if isinstance(config, (str, Path)):
        if not osp.isfile(config):
            raise StudyError(f'study config not found: {config}')
        raw, config_file = _read_study_file(str(config), options), osp.abspath(str(config))
    else:
        if not isinstance(config, Mapping):
            raise StudyError(f'study must be a dict(task=..., variants=..., ...), got '
                             f'{type(config).__name__}')
        if options:
            raise StudyError('options override a study config file; pass a dict with the '
                             'values in it instead')
        raw, config_file = copy.deepcopy(dict(config)), ''
    base = Path(config_file).parent if config_file else Path.cwd()
    where = config_file or 'study'
    _unknown(raw, STUDY_KEYS, where)

    task = raw.get('task')
    if task not in TASKS:
        raise StudyError(f'{where}: task must be one of {", ".join(TASKS)}, got {task!r}')
    data = _check_data(raw.get('data') or {}, where)
    variants = _check_variants(raw.get('variants') or {}, task, base, where, check_configs)
    reference = raw.get('reference')
    if reference not in variants:
        raise StudyError(f'{where}: reference must name one of the variants '
                         f'({", ".join(variants)}), got {reference!r}')
    seeds, distortions, severities, seen = _check_conditions(raw, where)
    for key in ('name', 'runs'):
        if key in raw:
            check_name(raw[key], f'{where}: {key}')
    name = raw.get('name') or (Path(config_file).stem if config_file else 'study')
    default_work_dir = osp.join('work_dirs', 'studies', raw.get('runs') or name)
    return Study(task=task, data=data, variants=variants, reference=reference,
                 seeds=seeds, distortions=distortions, severities=severities,
                 work_dir=osp.abspath(work_dir or default_work_dir), config_file=config_file,
                 name=name, train=_schedule(raw, 'train', TRAIN_KEYS[task], where),
                 pretrain=_schedule(raw, 'pretrain', PRETRAIN_KEYS, where),
                 bootstrap=_check_bootstrap(raw, where), seen_distortions=seen,
                 default_work_dir=default_work_dir,
                 cluster=check_resources(raw.get('cluster'), f'{where}: cluster'),
                 options=options)


def _check_data(data: Any, where: str) -> dict:
    """The ``data`` dict with a synthetic set's defaults filled in, or a folder's root made
    absolute."""
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
    return data


def _check_variants(variants_raw: Any, task: str, base: Path, where: str,
                    check_configs: bool) -> dict[str, Variant]:
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise StudyError(f'{where}: variants must be a non-empty dict name -> dict(config=...)')
    variants = {}
    for name, spec in variants_raw.items():
        check_name(name, f'{where}: variant name')
        if not isinstance(spec, dict):
            raise StudyError(f'{where}: variant {name!r} must be a dict, got {spec!r}')
        _unknown(spec, VARIANT_KEYS, f'{where}: variant {name!r}')
        v = _variant(name, _with_trainer(name, spec, variants_raw, where), task, base, where)
        if check_configs and v.train_as is None:
            _check_config(v.config, v.cfg_options, f'{where}: variant {name!r}')
            if v.pretrain:
                _check_config(v.pretrain, v.pretrain_cfg_options,
                              f'{where}: variant {name!r} (pretrain)')
        variants[name] = v
    return variants


def _with_trainer(name: str, spec: dict, variants_raw: Mapping, where: str) -> dict:
    """A ``train_as`` variant's spec: its trainer's, with its own label and ``bn_adapt``."""
    train_as = spec.get('train_as')
    if train_as is None:
        return spec
    trainer = variants_raw.get(train_as)
    if not isinstance(trainer, dict) or trainer.get('train_as'):
        trainers = [k for k, x in variants_raw.items()
                    if isinstance(x, dict) and not x.get('train_as')]
        raise StudyError(f'{where}: variant {name!r}: train_as must name a variant that '
                         f'trains itself ({", ".join(trainers)}), got {train_as!r}')
    if set(spec) & {'config', 'cfg_options', 'pretrain', 'pretrain_cfg_options'}:
        raise StudyError(f'{where}: variant {name!r} reuses {train_as!r}\'s training '
                         '(train_as) and cannot set its own config or pretraining')
    return dict(trainer, **{k: spec[k] for k in ('label', 'bn_adapt') if k in spec},
                train_as=train_as)


def _variant(name: str, spec: dict, task: str, base: Path, where: str) -> Variant:
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
    return Variant(name=name, config=_repo_path(spec['config'], base),
                   cfg_options=_options(spec, 'cfg_options', f'{where}: variant {name!r}'),
                   pretrain=_repo_path(spec['pretrain'], base) if spec.get('pretrain') else None,
                   pretrain_cfg_options=_options(spec, 'pretrain_cfg_options',
                                                 f'{where}: variant {name!r}'),
                   label=str(spec.get('label') or name), train_as=spec.get('train_as'),
                   bn_adapt=dict(bn_adapt) if bn_adapt is not None else None)


def _check_conditions(raw: Mapping, where: str) -> tuple[tuple, tuple, tuple, tuple]:
    """``(seeds, distortions, severities, seen_distortions)``, checked."""
    from fq_det.datasets.distortions import check_severity
    from fq_det.evaluation.robustness import resolve_distortions
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
    return tuple(seeds), distortions, severities, seen
