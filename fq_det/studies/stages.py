"""The stages of one study run: backbone pretraining and training (each through
:func:`~fq_det.studies.run_folder.run_stage`, trained by :mod:`fq_det.engine.runs`), the
robustness sweep of the trained model, and the statistics of its learned exponents."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch

from fq_det.analysis.alpha_stats import exponent_layer_stats
from fq_det.engine.runs import (final_checkpoint, last_val_top1, loss_curve, pretrain_backbone,
                                run_config, train_to_final)
from fq_det.evaluation.robustness import run_sweep
from fq_det.evaluation.sweep_store import StaleResultsError
from fq_det.studies.config import Study
from fq_det.studies.run_folder import (STAGE, count, prepare_data, pretrain_key, run_stage,
                                       train_key)
from fq_det.utils.io import file_lock, sha256_file

HPOW_IMAGES = 32  # test images whose predicted exponents describe an HPOW model

__all__ = ['train_run', 'sweep', 'alpha_report', 'HPOW_IMAGES']


def _pretrain(study: Study, variant: str, seed: int, overwrite: bool) -> dict:
    """The backbone pretraining stage of ``variant`` (its ``done.json`` + ``backbone``)."""
    v = study.variants[variant]
    stage = study.run_dir(variant, seed) / 'pretrain'
    key = pretrain_key(study, v, seed)
    cfg = run_config(v.pretrain, study.data_root, stage, seed, cfg_options=v.pretrain_cfg_options,
                     epochs=key['epochs'], name=f'{study.name}_{variant}_{seed}_pretrain')
    print(f'{STAGE} pretrain {count(cfg.train_cfg.max_epochs, "epoch")}', flush=True)

    def work() -> dict:
        result = pretrain_backbone(cfg)
        return dict(backbone_digest=sha256_file(result['backbone'], 16), top1=result['top1'],
                    epochs=result['epochs'], curve=result['curve'])

    done, reused = run_stage(stage, key, overwrite, work, Path(study.work_dir))
    if reused:
        print(f'reusing {stage / "backbone.pth"}', flush=True)
    return dict(done, backbone=str(stage / 'backbone.pth'))


def _train(study: Study, variant: str, seed: int, overwrite: bool,
           pretrained: dict | None) -> tuple:
    """The training stage of ``variant``: ``(cfg, final checkpoint, done record)``."""
    v = study.variants[variant]
    stage = study.run_dir(variant, seed) / 'train'
    key = train_key(study, v, seed, pretrained['backbone_digest'] if pretrained else None)
    detection = study.task == 'detection'
    cfg = run_config(v.config, study.data_root, stage, seed, cfg_options=v.cfg_options,
                     name=f'{study.name}_{variant}_{seed}',
                     iters=study.train.get('iters') if detection else None,
                     epochs=None if detection else study.train.get('epochs'),
                     backbone=pretrained['backbone'] if pretrained else None,
                     validate=not detection)
    final = final_checkpoint(cfg)
    length = (count(cfg.train_cfg.max_iters, 'iteration') if 'max_iters' in cfg.train_cfg
              else count(cfg.train_cfg.max_epochs, 'epoch'))
    print(f'{STAGE} train {length}', flush=True)

    def work() -> dict:
        train_to_final(cfg)
        return dict(checkpoint_digest=sha256_file(final, 16), curve=loss_curve(stage),
                    top1=last_val_top1(stage))

    done, reused = run_stage(stage, key, overwrite, work, Path(study.work_dir))
    if reused:
        print(f'reusing {final}', flush=True)
    return cfg, str(final), done


def train_run(study: Study, variant: str, seed: int, overwrite: bool) -> tuple:
    """Pretrain (if asked) and train ``variant``;
    ``(cfg, checkpoint, pretrained, trained, timings)`` (the stages' ``done.json`` records).

    Under a lock on the run folder, so variants that reuse this training (``train_as``)
    wait for it instead of training it a second time.
    """
    prepare_data(study)
    timings = {}
    with file_lock(study.run_dir(variant, seed) / '.train.lock'):
        pretrained = None
        if study.variants[variant].pretrain:
            t = time.time()
            pretrained = _pretrain(study, variant, seed, overwrite)
            timings['pretrain_s'] = time.time() - t
        t = time.time()
        cfg, checkpoint, trained = _train(study, variant, seed, overwrite, pretrained)
        timings['train_s'] = time.time() - t
    return cfg, checkpoint, pretrained, trained, timings


def sweep(study: Study, cfg, checkpoint: str, out_dir: Path, seed: int,
          overwrite: bool = False) -> dict:
    """The task's robustness sweep of ``checkpoint`` with the study's distortions and seed,
    keeping per-image records for the image bootstrap. A sweep of the same settings resumes;
    one of other settings is refused, or with ``overwrite`` started afresh."""
    kwargs = dict(distortions=study.distortions, severities=study.severities, seeds=(seed, ),
                  save_per_image=True)
    try:
        return run_sweep(study.task, cfg, checkpoint, str(out_dir), overwrite=False, **kwargs)
    except StaleResultsError:
        if not overwrite:
            raise
        return run_sweep(study.task, cfg, checkpoint, str(out_dir), overwrite=True, **kwargs)


def alpha_report(cfg, checkpoint: str, num_images: int = HPOW_IMAGES) -> list[dict] | None:
    """Per quantizer layer: of ``alpha = p - 1`` (the distance of the exponent from the
    identity) mean, std, mean |alpha| and the share of channels that moved from the
    identity; of ``p`` the mean, std, shares quantizing and amplifying and the histogram
    (:func:`~fq_det.analysis.alpha_stats.exponent_layer_stats`).

    POW (and SF-POW): the learned per-channel exponents of the checkpoint. HPOW: the
    exponents its branch predicts on the first ``num_images`` test images (every image x
    channel). ``None`` for models without exponents (plain, SF). The last row, ``ALL``,
    pools every layer.
    """
    from fq_det.analysis.alpha_stats import extract_exponents
    from fq_det.models.quantizers import HPOW

    backbone = cfg.model.get('backbone', {})
    # ResNetPOW / ResNetHPOW name the quantizer in the backbone type, CifarSmallNet and
    # Plain-10 in ``quant_cfg.type``
    kind = f"{backbone.get('type', '')} {(backbone.get('quant_cfg') or {}).get('type', '')}"
    if 'HPOW' in kind:
        exponents = _hpow_exponents(cfg, checkpoint, num_images, HPOW)
    elif 'POW' in kind:
        exponents = extract_exponents(checkpoint)
    else:
        return None
    rows = [exponent_layer_stats(name, p) for name, p in exponents.items()]
    pooled = np.concatenate([np.ravel(p) for p in exponents.values()])
    rows.append(exponent_layer_stats('ALL', pooled))
    return rows


def _hpow_exponents(cfg, checkpoint: str, num_images: int, hpow_type) -> dict[str, np.ndarray]:
    """Exponents ``p`` an HPOW model predicts on the first ``num_images`` test images."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner, load_checkpoint

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    model.eval()
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, hpow_type)}
    collected = {name: [] for name in layers}
    seen = 0
    with torch.no_grad():
        for batch in loader:
            model.test_step(batch)
            for name, m in layers.items():
                p = m.last_alpha + m.reading.offset
                collected[name].append(p.reshape(p.shape[0], -1).double().numpy())
            seen += len(batch['inputs'])
            if seen >= num_images:
                break
    return {name: np.concatenate(v)[:num_images] for name, v in collected.items() if v}
