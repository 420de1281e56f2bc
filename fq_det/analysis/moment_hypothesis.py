"""Which moments does a distortion shift, and what removes the shift: quantization or
test-time BN adaptation?

The paper argues that distortions shift the skewness and kurtosis of features, which
normalisation cannot remove, and that quantization does. Test-time BN adaptation
(Schneider et al. 2020) rests on the opposite premise: the shift is mostly in the mean and
variance, which re-estimated BN statistics remove. This module measures both on the same
backbones: for each model, the per-layer mean over channels of
``|moment(distorted) - moment(clean)|`` for mean, variance, skewness and kurtosis
(:mod:`fq_det.analysis.moments`), once with the training BN statistics and once with
statistics adapted to each condition's images (:func:`fq_det.engine.bn_adapt.adapt_bn`:
the clean images for the clean moments, the distorted ones for the distorted moments).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from .feature_shift import (IDENTITY, IMAGENET_MEAN, IMAGENET_STD, collect_moments,
                            make_distort_fn, resolve_layers, to_tensor)
from .moments import MOMENT_NAMES, moment_shift

__all__ = ['moment_shifts', 'compare_moment_shifts', 'stage_layers', 'format_comparison',
           'plot_comparison', 'build_classifier_backbone']


def stage_layers(model: nn.Module) -> list[str]:
    """Per ResNet stage, the last block's last BN (after BN) and the block's output (after
    its activation, where a quantizer acts)."""
    names = [n for n, _ in model.named_modules()]
    out = []
    for stage in ('layer1', 'layer2', 'layer3', 'layer4'):
        blocks = sorted({int(n.split('.')[1]) for n in names
                         if n.startswith(stage + '.') and n.split('.')[1].isdigit()})
        if not blocks:
            continue
        last = f'{stage}.{blocks[-1]}'
        bns = [n for n in names if n.startswith(last + '.bn')]
        out += [sorted(bns)[-1], last] if bns else [last]
    if not out:
        raise ValueError('no ResNet stages (layer1..layer4) found; pass layer names explicitly')
    return out


def _batches(image_paths, distortion: str, severity: int, *, size, mean, std, bgr_to_rgb,
             batch_size: int, seed: int):
    """Input tensors of the images distorted as the sweeps distort them."""
    import cv2

    from fq_det.datasets.distortion_route import distortion_rng, file_image_key
    fn = make_distort_fn(distortion, severity)
    for start in range(0, len(image_paths), batch_size):
        batch = []
        for p in image_paths[start:start + batch_size]:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f'cannot read image {p}')
            batch.append(fn(img, distortion_rng(seed, file_image_key(str(p)), distortion,
                                                severity)))
        yield to_tensor(batch, size, mean, std, bgr_to_rgb)


def moment_shifts(model: nn.Module, image_paths: Sequence[str | Path], distortion: str,
                  severity: int, layers: Sequence[str], *, bn_prior: float | None = None,
                  size: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  bgr_to_rgb: bool = True, batch_size: int = 32, seed: int = 0) -> dict:
    """``{layer: {moment: mean over channels of |shift|}}``, optionally BN-adapted.

    ``bn_prior=None``: the model's training statistics; a number ``N``: each condition's
    BN statistics adapted from all ``image_paths`` of that condition with prior ``N``.
    """
    from fq_det.engine.bn_adapt import adapt_bn, restore_bn
    modules = resolve_layers(model, layers)
    kw = dict(size=size, mean=mean, std=std, bgr_to_rgb=bgr_to_rgb)
    moments = {}
    for name, sev in ((IDENTITY, 0), (distortion, severity)):
        saved = None
        model.eval()
        if bn_prior is not None:
            saved = adapt_bn(model, _batches(image_paths, name, sev, batch_size=batch_size,
                                             seed=seed, **kw), bn_prior, len(image_paths))
        try:
            moments[name] = collect_moments(
                model, image_paths, modules, make_distort_fn(name, sev), distortion_name=name,
                severity=sev, batch_size=batch_size, seed=seed, progress=False, **kw)
        finally:
            if saved is not None:
                restore_bn(model, saved)
    out = {}
    for layer in modules:
        shift = moment_shift(moments[IDENTITY][layer], moments[distortion][layer])
        out[layer] = {m: float(np.abs(shift[m]).mean()) for m in MOMENT_NAMES}
    return out


def compare_moment_shifts(models: dict[str, tuple[nn.Module, dict]],
                          image_paths: Sequence[str | Path], distortion: str, severity: int,
                          layers: Sequence[str] | None = None, bn_prior: float = 0.0,
                          **kwargs) -> dict[str, dict]:
    """Every model as trained and with BN adaptation: ``{label: {layer: {moment: value}}}``.

    ``models`` maps labels to ``(backbone, preprocessing)`` (mean, std, bgr_to_rgb); the
    adapted rows are labelled ``'<label> + BN adapt.'``.
    """
    out = {}
    for label, (model, norm) in models.items():
        names = list(layers) if layers else stage_layers(model)
        args = dict(kwargs, **norm)
        out[label] = moment_shifts(model, image_paths, distortion, severity, names, **args)
        out[f'{label} + BN adapt.'] = moment_shifts(model, image_paths, distortion, severity,
                                                    names, bn_prior=bn_prior, **args)
    return out


def format_comparison(result: dict[str, dict], distortion: str, severity: int) -> str:
    """Markdown: one table per moment, layers as columns, models as rows."""
    layers = list(next(iter(result.values())))
    lines = [f'Mean over channels of |moment({distortion} {severity}) - moment(clean)|', '']
    for m in MOMENT_NAMES:
        lines += [f'**{m}**', '', '| model | ' + ' | '.join(layers) + ' |',
                  '|---|' + '---:|' * len(layers)]
        lines += [f'| {label} | ' + ' | '.join(f'{rows[layer][m]:.3g}' for layer in layers) + ' |'
                  for label, rows in result.items()]
        lines.append('')
    return '\n'.join(lines)


def plot_comparison(result: dict[str, dict], out_file: str | Path, title: str = '') -> Path:
    """Four panels (one per moment): |shift| against layer, one line per model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    layers = list(next(iter(result.values())))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, m in zip(axes, MOMENT_NAMES):
        for label, rows in result.items():
            ax.plot(range(len(layers)), [rows[layer][m] for layer in layers], marker='o', ms=3,
                    ls='--' if 'BN adapt' in label else '-', label=label)
        ax.set_title(f'|shift of {m}|', fontsize=10)
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=60, ha='right', fontsize=7)
        ax.set_yscale('log')
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def build_classifier_backbone(config: str | Path, checkpoint: str | Path | None
                              ) -> tuple[nn.Module, dict]:
    """The backbone of a classification-module model and its input normalisation."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True, logger='silent')
    pre = model.data_preprocessor
    norm = dict(mean=tuple(pre.mean.flatten().tolist()), std=tuple(pre.std.flatten().tolist()),
                bgr_to_rgb=bool(getattr(pre, 'to_rgb', False)))
    backbone = model.backbone
    backbone.eval()  # mmdet's ResNet.train() returns None: no chaining
    return backbone, norm


def save_crops(data_root: str | Path, out_dir: str | Path, max_crops: int, crop_size: int = 48,
               split: str = 'test') -> list[Path]:
    """The object crops of a synthetic VOC split as PNG files (what the crop classifiers see)."""
    import cv2

    from fq_det.classification.datasets import VOCObjectCropsDataset
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    ds = VOCObjectCropsDataset(data_root=str(data_root),
                               ann_file=f'VOC2007/ImageSets/Main/{split}.txt',
                               data_prefix=dict(sub_data_root='VOC2007/'), crop_size=crop_size,
                               metainfo=dict(classes=SYNTH_CLASSES), pipeline=[])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(max_crops, len(ds))):
        info = ds.get_data_info(i)
        path = out / f'crop_{i:05d}.png'
        cv2.imwrite(str(path), info['img'])
        paths.append(path)
    return paths


