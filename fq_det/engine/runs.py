"""One training run of a config, the single route of the main job and the studies: the
config set up for a data root, a work folder and a seed, trained to its final checkpoint
(resumed from the folder's latest one), and for a crop classifier its backbone exported for
a detector to start from (``init_cfg=dict(type='Pretrained', ...)``)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from fq_det.utils.io import read_scalars

if TYPE_CHECKING:
    from mmengine.config import Config

__all__ = ['run_config', 'final_checkpoint', 'train_to_final', 'pretrain_backbone',
           'loss_curve', 'last_val_top1']


def run_config(config: str | Path, data_root: str | Path, work_dir: str | Path, seed: int, *,
               cfg_options: Mapping | None = None, name: str | None = None,
               iters: int | None = None, epochs: int | None = None,
               backbone: str | Path | None = None, validate: bool = True) -> Config:
    """``config`` read and set up for one run.

    ``cfg_options`` merged as ``--cfg-options`` would be; the data under ``data_root``;
    ``work_dir`` and ``randomness.seed``; ``name`` for the experiment (default: the work
    folder's name); ``iters`` / ``epochs`` rescale the schedule
    (:mod:`fq_det.engine.schedules`); ``backbone``: a backbone checkpoint to start from;
    ``validate=False`` trains without validation (the robustness sweep's clean pair is then
    the evaluation).
    """
    from mmengine.config import Config

    from fq_det.datasets.data_check import set_data_root
    from fq_det.engine.schedules import scale_epoch_schedule, scale_iter_schedule
    cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(copy.deepcopy(dict(cfg_options)))
    set_data_root(cfg, str(data_root))
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = name or Path(work_dir).name
    if 'visualizer' in cfg:
        # Unnamed, the Runner names it after the experiment and its start time: a second run
        # in the same process gets its own visualizer, not the first one's (mmengine keeps
        # instances by name), whose folder may be gone.
        cfg.visualizer.pop('name', None)
    if iters:
        scale_iter_schedule(cfg, int(iters))
    if epochs:
        scale_epoch_schedule(cfg, int(epochs))
    if backbone:
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(backbone))
    if not validate:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        if cfg.default_hooks.get('visualization', {}).get('type') == 'DetVisualizationHook':
            cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    return cfg


def final_checkpoint(cfg: Config) -> Path:
    """Where mmengine writes the last checkpoint: ``iter_<max_iters>.pth`` or
    ``epoch_<max_epochs>.pth`` in the work folder."""
    if 'max_iters' in cfg.train_cfg:
        return Path(cfg.work_dir) / f'iter_{cfg.train_cfg.max_iters}.pth'
    return Path(cfg.work_dir) / f'epoch_{cfg.train_cfg.max_epochs}.pth'


def train_to_final(cfg: Config) -> Path:
    """Train with mmengine's Runner until the final checkpoint exists; return it.

    A finished folder is not trained again; an interrupted one resumes from its latest
    checkpoint. Whoever calls this makes sure the folder holds a run of the same settings.
    """
    from fq_det.engine.runner import build_runner
    final = final_checkpoint(cfg)
    if final.is_file():
        return final
    cfg.resume = True  # mmengine: the latest checkpoint in work_dir, if there is one
    build_runner(cfg).train()
    if not final.is_file():
        raise RuntimeError(f'training finished without writing {final}')
    return final


def pretrain_backbone(cfg: Config) -> dict:
    """Train the crop classifier ``cfg`` (:func:`train_to_final`) and export its backbone to
    ``<work_dir>/backbone.pth``; returns ``backbone``, ``top1`` (the last validation),
    ``epochs`` and the loss ``curve``."""
    from fq_det.classification import export_backbone
    final = train_to_final(cfg)
    backbone = Path(cfg.work_dir) / 'backbone.pth'
    export_backbone(final, backbone)
    return dict(backbone=str(backbone), top1=last_val_top1(cfg.work_dir),
                epochs=cfg.train_cfg.max_epochs, curve=loss_curve(cfg.work_dir))


def loss_curve(work_dir: str | Path) -> list[list[float]]:
    """``[[step, loss], ...]`` of the run in ``work_dir``."""
    points = {}
    for rec in read_scalars(work_dir):
        if 'loss' in rec:
            points[int(rec.get('step', rec.get('iter', len(points))))] = float(rec['loss'])
    return [[k, points[k]] for k in sorted(points)]


def last_val_top1(work_dir: str | Path) -> float | None:
    """The last validation top-1 (%) of the run in ``work_dir``, if it validated."""
    top1 = None
    for rec in read_scalars(work_dir):
        if 'accuracy/top1' in rec:
            top1 = float(rec['accuracy/top1'])
    return top1
