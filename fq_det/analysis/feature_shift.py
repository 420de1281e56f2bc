"""Shift of per-channel feature moments between clean and distorted images.

The supplement's Figure 1: for chosen layers of a network, the per-channel mean,
variance, skewness and kurtosis over a set of images (every position counts) are
computed once on the clean images and once on the same images distorted, and the
differences ``distorted - clean`` are reported. Layers are read with forward hooks,
so any module can be chosen: a convolution (before normalisation) and the norm layer
that follows it (after normalisation) show whether normalisation removes the shift.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fq_det.utils.io import unwrap_state_dict

from .moments import RunningMoments, moment_shift, summarize_shift

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
IDENTITY = 'identity'
TORCHVISION_ARCHS = ('vgg16', 'vgg16_bn', 'resnet18', 'resnet50')
# ImageNet statistics on the 0-255 scale (RGB), as torchvision and mmdet use them.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

DistortFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


# ---- inputs -----------------------------------------------------------------------------
def list_images(image_dir: str | Path, max_images: int | None = None) -> list[Path]:
    """Image files of a folder (sorted, non-recursive), at most ``max_images``."""
    root = Path(image_dir)
    if not root.is_dir():
        raise FileNotFoundError(f'image folder not found: {root}')
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {root}')
    return files[:max_images] if max_images else files


def central_box(image: np.ndarray) -> np.ndarray:
    """The middle half of the image as one xyxy box (stand-in for ground truth)."""
    h, w = image.shape[:2]
    return np.array([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]])


def make_distort_fn(distortion: str | DistortFn, severity: int) -> DistortFn:
    """``(image, rng) -> image`` for a distortion name (or 'identity') or a callable.

    ``targeted_occlusion`` needs object boxes, which a plain image folder lacks: the
    central half of each image (:func:`central_box`) stands in for them.
    """
    if callable(distortion):
        return distortion
    if distortion == IDENTITY:
        return lambda image, rng: image
    from fq_det.datasets.distortions import check_distortion, check_severity, distort, needs_boxes
    try:
        name = check_distortion(distortion)
    except ValueError as err:
        raise ValueError(f"{err} (or '{IDENTITY}' for no distortion)") from None
    severity = check_severity(severity)
    if needs_boxes(name):
        return lambda image, rng: distort(image, name, severity, rng, boxes=central_box(image))
    return lambda image, rng: distort(image, name, severity, rng)


def to_tensor(images: Sequence[np.ndarray], size: int | None, mean: Sequence[float],
              std: Sequence[float], bgr_to_rgb: bool) -> torch.Tensor:
    """BGR uint8 images -> normalised float batch ``(N, 3, S, S)`` (resized when ``size``)."""
    import cv2
    batch = []
    for img in images:
        if size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        if bgr_to_rgb:
            img = img[..., ::-1]
        batch.append(np.ascontiguousarray(img, dtype=np.float32))
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


# ---- layers -----------------------------------------------------------------------------
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def default_layers(model: nn.Module, num_pairs: int = 3) -> list[str]:
    """Evenly spaced (conv, following norm) pairs; conv layers only if there is no norm.

    ``num_pairs=3`` gives six layers, as many as the supplement's Figure 1 shows.
    """
    named = [(n, m) for n, m in model.named_modules() if n]
    pairs, last_conv = [], None
    for name, mod in named:
        if isinstance(mod, nn.Conv2d):
            last_conv = name
        elif isinstance(mod, _NORMS) and last_conv is not None:
            pairs.append((last_conv, name))
            last_conv = None
    if pairs:
        idx = np.unique(np.linspace(0, len(pairs) - 1, min(num_pairs, len(pairs))).round().astype(int))
        return [layer for i in idx for layer in pairs[i]]
    convs = [n for n, m in named if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError('model has no Conv2d or norm layers; pass layer names explicitly')
    idx = np.unique(np.linspace(0, len(convs) - 1, min(2 * num_pairs, len(convs))).round().astype(int))
    return [convs[i] for i in idx]


def resolve_layers(model: nn.Module, layers: Sequence[str] | None) -> dict[str, nn.Module]:
    """Layer names -> modules; unknown names raise with a list of valid ones."""
    modules = dict(model.named_modules())
    names = list(layers) if layers else default_layers(model)
    unknown = [n for n in names if n not in modules or not n]
    if unknown:
        valid = [n for n in modules if n]
        shown = ', '.join(valid[:40]) + (' ...' if len(valid) > 40 else '')
        raise ValueError(f'unknown layer(s) {unknown}; valid names: {shown}')
    return {n: modules[n] for n in names}


class _StopForward(Exception):
    """Raised by a hook once every hooked layer has run: the rest of the net is skipped."""


class LayerMomentCollector:
    """Forward hooks that stream each layer's output into a ``RunningMoments``.

    After the first (complete) forward pass the collector knows how often each layer
    runs per pass; later passes stop as soon as all of them have run.
    """

    def __init__(self, model: nn.Module, layers: dict[str, nn.Module]) -> None:
        self.model, self.layers = model, layers
        self.moments: dict[str, RunningMoments] = {}
        self._calls: dict[str, int] = {}
        self._calls_per_pass: dict[str, int] | None = None
        self._handles: list = []

    def __enter__(self) -> 'LayerMomentCollector':
        for name, mod in self.layers.items():
            self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if isinstance(output, (tuple, list)):
                output = next((o for o in output if isinstance(o, torch.Tensor)), None)
            if not isinstance(output, torch.Tensor) or output.dim() < 2:
                raise ValueError(f'layer {name!r} must output a (N, C, ...) tensor, '
                                 f'got {type(output).__name__}')
            if name not in self.moments:
                self.moments[name] = RunningMoments(output.shape[1])
            self.moments[name].update(output)
            self._calls[name] = self._calls.get(name, 0) + 1
            if self._calls_per_pass is not None and self._calls == self._calls_per_pass:
                raise _StopForward
        return hook

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> None:
        """One forward pass of ``x``, accumulating the hooked outputs."""
        self._calls = {}
        try:
            self.model(x)
        except _StopForward:
            pass
        if self._calls_per_pass is None:
            missing = [n for n in self.layers if n not in self._calls]
            if missing:
                raise ValueError(f'layer(s) {missing} did not run in the forward pass')
            self._calls_per_pass = dict(self._calls)


@contextmanager
def _norm_mode(model: nn.Module, batch_stats: bool):
    """Eval mode; with ``batch_stats`` batch-norm layers normalise with batch statistics.

    Their running statistics (and counters) are restored afterwards.
    """
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] \
        if batch_stats else []
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    for m in norms:
        m.train()
    try:
        yield
    finally:
        for m, state in zip(norms, saved):
            m.load_state_dict(state)
            m.eval()


def collect_moments(model: nn.Module, image_paths: Sequence[str | Path], layers: dict[str, nn.Module],
                    distort_fn: DistortFn, *, distortion_name: str = 'custom', severity: int = 0,
                    size: int | None = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    bgr_to_rgb: bool = True, batch_size: int = 4, seed: int = 0,
                    device: str = 'cpu', norm_batch_stats: bool = False,
                    progress: bool = True) -> dict[str, RunningMoments]:
    """Per-layer moments of ``model`` over the images, each passed through ``distort_fn``.

    ``norm_batch_stats=True`` runs batch-norm layers with the statistics of each batch
    (training-mode normalisation; running statistics are left untouched), which
    removes the mean and variance shift but, being affine per channel, never the
    shift of skewness and kurtosis. Otherwise the model runs in eval mode.

    Each image's generator is the sweeps' (:mod:`fq_det.datasets.distortion_route`,
    keyed by the file name), so an image is distorted here as the sweeps distort it.
    """
    import cv2
    from mmengine.utils import ProgressBar

    from fq_det.datasets.distortion_route import distortion_rng, file_image_key
    bar = ProgressBar(len(image_paths)) if progress else None
    with _norm_mode(model, norm_batch_stats), LayerMomentCollector(model, layers) as col:
        for start in range(0, len(image_paths), batch_size):
            batch = []
            for i in range(start, min(start + batch_size, len(image_paths))):
                img = cv2.imread(str(image_paths[i]), cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError(f'cannot read image {image_paths[i]}')
                key = file_image_key(str(image_paths[i]))
                img = distort_fn(img, distortion_rng(seed, key, distortion_name, severity))
                batch.append(img)
                if bar:
                    bar.update()
            col.run(to_tensor(batch, size, mean, std, bgr_to_rgb).to(device))
    return col.moments


def compute_feature_moment_shift(model: nn.Module, image_paths: Sequence[str | Path],
                                 distortion: str | DistortFn, severity: int,
                                 layers: Sequence[str] | None = None, **kwargs) -> dict[str, dict]:
    """Clean vs distorted moments of every chosen layer.

    Returns ``{layer: {'module': class name, 'shift': {moment: (C,) array},
    'summary': {...}, 'clean': {...}, 'distorted': {...}}}`` in layer order.
    ``kwargs`` go to :func:`collect_moments` (size, mean, std, bgr_to_rgb, batch_size,
    seed, device, progress). ``distortion='identity'`` gives a shift of exactly 0.
    """
    name = distortion if isinstance(distortion, str) else getattr(distortion, '__name__', 'custom')
    modules = resolve_layers(model, layers)
    distort_fn = make_distort_fn(distortion, severity)  # bad names fail before any work
    if not image_paths:
        raise ValueError('no images given')
    clean = collect_moments(model, image_paths, modules, make_distort_fn(IDENTITY, 0),
                            distortion_name=name, severity=severity, **kwargs)
    dist = collect_moments(model, image_paths, modules, distort_fn,
                           distortion_name=name, severity=severity, **kwargs)
    out = {}
    for layer, mod in modules.items():
        shift = moment_shift(clean[layer], dist[layer])
        out[layer] = dict(module=type(mod).__name__, shift=shift, summary=summarize_shift(shift),
                          clean=clean[layer].as_dict(), distorted=dist[layer].as_dict())
    return out


# ---- models -----------------------------------------------------------------------------
def build_torchvision_model(arch: str, weights: str | Path | None = None, seed: int = 0) -> nn.Module:
    """A torchvision classifier, randomly initialised (seeded) or from a local state dict."""
    import torchvision
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f'unknown torchvision arch {arch!r}; choose from {TORCHVISION_ARCHS}')
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    if weights:
        state = torch.load(str(weights), map_location='cpu', weights_only=True)
        state = unwrap_state_dict(state, keys=('state_dict', )) if isinstance(state, dict) else state
        _load_torchvision_state(model, state, f'{weights} does not hold the weights of '
                                              f'torchvision {arch}')
    return model.eval()


def _load_torchvision_state(model: nn.Module, state: Mapping, refusal: str) -> None:
    """``model.load_state_dict(state)``; ``ValueError(refusal + what differs)`` unless every
    key is there with its shape."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes differ: torch names them, one line each
        lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
        raise ValueError(f'{refusal}: {"; ".join(lines[:3])}') from None
    parts = [f'{len(keys)} {what} ({", ".join(keys[:3])}{", ..." if len(keys) > 3 else ""})'
             for what, keys in (('missing', result.missing_keys),
                                ('unexpected', result.unexpected_keys)) if keys]
    if parts:
        raise ValueError(f'{refusal}: {"; ".join(parts)}')


def build_detector_backbone(config: str | Path, checkpoint: str | Path | None,
                            device: str = 'cpu') -> tuple[nn.Module, dict]:
    """The backbone of an MMDetection detector and its preprocessing (mean, std, bgr_to_rgb)."""
    from mmdet.apis import init_detector
    detector = init_detector(str(config), str(checkpoint) if checkpoint else None, device=device)
    pre = detector.data_preprocessor
    norm = dict(mean=tuple(pre.mean.flatten().tolist()) if getattr(pre, '_enable_normalize', False) else (0., 0., 0.),
                std=tuple(pre.std.flatten().tolist()) if getattr(pre, '_enable_normalize', False) else (1., 1., 1.),
                bgr_to_rgb=bool(getattr(pre, '_channel_conversion', False)))
    backbone = detector.backbone
    backbone.eval()  # mmdet's ResNet.train() returns None, so no chaining
    return backbone, norm
