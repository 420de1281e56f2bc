"""The per-run stages of a robustness study that act on a trained model: the robustness
sweep (detection or classification) and the statistics of the learned exponents."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

ALPHA_THRESHOLD = 0.1  # |alpha| above this counts as a channel that moved away from identity
HPOW_IMAGES = 32  # test images whose predicted exponents describe an HPOW model


def sweep(study, cfg, checkpoint: str, out_dir: Path, seed: int, overwrite: bool = False) -> dict:
    """The task's robustness sweep of ``checkpoint`` with the study's distortions and seed,
    keeping per-image records for the image bootstrap. A sweep of the same settings resumes;
    one of other settings is refused, or with ``overwrite`` started afresh."""
    from fq_det.evaluation.sweep_store import StaleResultsError
    if study.task == 'detection':
        from fq_det.evaluation.robustness import run_robustness_sweep as run
        args, kwargs = (cfg, checkpoint, str(out_dir)), dict(seed=seed)
    else:
        from fq_det.classification.robustness import run_classification_robustness as run
        args, kwargs = (cfg, checkpoint, out_dir), dict(seeds=(seed, ))
    kwargs.update(distortions=study.distortions, severities=study.severities,
                  save_per_image=True)
    try:
        return run(*args, overwrite=False, **kwargs)
    except StaleResultsError:
        if not overwrite:
            raise
        return run(*args, overwrite=True, **kwargs)


def _layer_stats(name: str, values: np.ndarray) -> dict:
    """``values``: the exponents ``p``; ``alpha = p - 1`` as measured from the identity."""
    from fq_det.analysis.alpha_stats import exponent_stats
    p = np.asarray(values, dtype=np.float64).ravel()
    a = p - 1
    return dict(layer=name, count=int(a.size), mean=float(a.mean()), std=float(a.std()),
                mean_abs=float(np.abs(a).mean()),
                frac_moved=float((np.abs(a) > ALPHA_THRESHOLD).mean()), **exponent_stats(p))


def alpha_report(cfg, checkpoint: str, num_images: int = HPOW_IMAGES) -> list[dict] | None:
    """Per quantizer layer: of ``alpha = p - 1`` (the distance of the exponent from the
    identity) mean, std, mean |alpha| and the fraction of |alpha| > 0.1; of ``p`` the
    :func:`~fq_det.analysis.alpha_stats.exponent_stats` (mean, std, shares quantizing and
    amplifying, histogram).

    POW (and SF-POW): the learned per-channel exponents of the checkpoint. HPOW: the
    exponents its branch predicts on the first ``num_images`` test images (every image x
    channel). ``None`` for models without exponents (plain, SF). The last row, ``ALL``,
    pools every layer.
    """
    from fq_det.analysis.alpha_stats import extract_exponents
    from fq_det.models.quantizers import HPOW

    backbone_type = str(cfg.model.get('backbone', {}).get('type', ''))
    if 'HPOW' in backbone_type:
        exponents = _hpow_exponents(cfg, checkpoint, num_images, HPOW)
    elif 'POW' in backbone_type:
        exponents = extract_exponents(checkpoint)
    else:
        return None
    rows = [_layer_stats(name, p) for name, p in exponents.items()]
    rows.append(_layer_stats('ALL', np.concatenate([np.ravel(p) for p in exponents.values()])))
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
