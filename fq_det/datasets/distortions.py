"""Image distortions of the paper (and Gaussian noise), as pure functions.

Every distortion is a pure function of ``(image, severity, rng, boxes)``: a uint8
``HxWx3`` image (BGR, as mmcv loads it; only ``jpeg``'s chroma handling cares), a
severity in ``1..5``, a :class:`numpy.random.Generator` that supplies all randomness,
and, for ``targeted_occlusion`` only, the ground-truth boxes ``(K, 4)`` in ``xyxy``
pixel coordinates. It returns a new uint8 image of the same shape; the input is
never modified.

Each distortion's function and the strength of each severity live in one
structure, :data:`SEVERITY_TABLE` (rendered in
``docs/distortions.md`` by :func:`severity_table_markdown`). Each function draws its
random numbers first and scales them by the severity afterwards, so with the same
generator state a higher severity is a strictly stronger version of a lower one
(the same blur angle, nested noise masks, nested occluders).

The 19 corruptions of the common-corruption benchmark are built in as ``'c:<name>'``
(e.g. ``'c:fog'``; :mod:`fq_det.datasets.common_corruptions`, their own table
:data:`~fq_det.datasets.common_corruptions.CORRUPTION_TABLE`). The prefix keeps them
apart from this project's ``motion_blur``, ``jpeg`` and ``gaussian_noise``, which share
names but not parameters. Optionally, the 15 benchmark corruptions of the
``imagecorruptions`` package itself are available as ``'ic:<name>'`` when that package
is importable; see :data:`IC_CORRUPTIONS`.

Named sets of distortions (:data:`PRESETS`, resolved by :func:`resolve_preset`):
``'all'`` and ``'paper'`` (this project's seven), ``'benchmark'`` (the 15 ``c:``
corruptions of the benchmark), ``'benchmark-extra'`` (the 4 held-out ones).
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from . import common_corruptions as _cc

__all__ = [
    'DISTORTIONS', 'SEVERITIES', 'IC_CORRUPTIONS', 'SEVERITY_TABLE', 'DistortionSpec',
    'COMMON_CORRUPTIONS', 'BENCHMARK', 'BENCHMARK_EXTRA', 'PRESETS', 'resolve_preset',
    'distort', 'check_distortion', 'check_severity', 'available_distortions',
    'needs_boxes', 'severity_table_markdown', 'import_imagecorruptions',
]

SEVERITIES = (1, 2, 3, 4, 5)

#: The common-corruption benchmark's 15 corruptions, reachable as ``'ic:<name>'``.
IC_CORRUPTIONS = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur',
    'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast',
    'elastic_transform', 'pixelate', 'jpeg_compression')
IC_PREFIX = 'ic:'
#: Prefix of the built-in common corruptions: ``'c:<name>'``.
C_PREFIX = 'c:'
#: The 19 built-in common corruptions, as :func:`distort` names them.
COMMON_CORRUPTIONS = tuple(C_PREFIX + n for n in _cc.CORRUPTIONS)
#: The 15 of the benchmark (ImageNet-C, Pascal-C, COCO-C): ``c:gaussian_noise`` ...
BENCHMARK = tuple(C_PREFIX + n for n in _cc.BENCHMARK_CORRUPTIONS)
#: The 4 held-out ones: ``c:speckle_noise``, ``c:gaussian_blur``, ``c:spatter``, ``c:saturate``.
BENCHMARK_EXTRA = tuple(C_PREFIX + n for n in _cc.EXTRA_CORRUPTIONS)


_INPAINT_REGIONS = 8
_INPAINT_MAX_SIDE = 128


# --------------------------------------------------------------------------- checks
def available_distortions() -> tuple[str, ...]:
    """Names accepted by :func:`distort`: :data:`DISTORTIONS`, the ``c:*`` corruptions,
    plus ``ic:*`` if imagecorruptions is installed."""
    return DISTORTIONS + COMMON_CORRUPTIONS + \
        (tuple(IC_PREFIX + n for n in IC_CORRUPTIONS) if _ic_available() else ())


def check_distortion(name: str) -> str:
    """``name`` if it is a known distortion, else ``ValueError`` listing the choices."""
    if isinstance(name, str) and name in SEVERITY_TABLE:
        return name
    if isinstance(name, str) and name.startswith(C_PREFIX):
        if name not in COMMON_CORRUPTIONS:
            raise ValueError(f'Unknown common corruption {name!r}; valid choices: '
                             f'{", ".join(COMMON_CORRUPTIONS)}')
        return name
    if isinstance(name, str) and name.startswith(IC_PREFIX):
        corruption = name[len(IC_PREFIX):]
        if corruption not in IC_CORRUPTIONS:
            raise ValueError(f'Unknown common corruption {name!r}; valid choices: '
                             f'{", ".join(IC_PREFIX + n for n in IC_CORRUPTIONS)}')
        _import_ic()  # clear ImportError when the optional package is missing
        return name
    raise ValueError(f'Unknown distortion {name!r}; valid choices: {", ".join(DISTORTIONS)}'
                     f', the {len(COMMON_CORRUPTIONS)} common corruptions '
                     f'{", ".join(COMMON_CORRUPTIONS)}'
                     f' (and ic:<name> for imagecorruptions\' {len(IC_CORRUPTIONS)}'
                     f' when that package is installed)')


def check_severity(severity: int) -> int:
    """Return ``severity`` as int if it is one of :data:`SEVERITIES`, else raise ``ValueError``."""
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)) \
            or int(severity) not in SEVERITIES:
        raise ValueError(f'Invalid severity {severity!r}; valid choices: '
                         f'{", ".join(map(str, SEVERITIES))}')
    return int(severity)


def needs_boxes(name: str) -> bool:
    """Whether the distortion needs ground-truth boxes (only ``targeted_occlusion``)."""
    spec = SEVERITY_TABLE.get(name)
    return bool(spec and spec.needs_boxes)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        desc = (f'{image.dtype} array of shape {image.shape}' if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f'Distortions take a uint8 HxWx3 image, got a {desc}')


def _check_boxes(boxes, name: str) -> np.ndarray:
    if boxes is None:
        raise ValueError(f'{name!r} needs ground-truth boxes (K, 4) in xyxy pixels; got None. '
                         'In a pipeline, put Distort after LoadAnnotations.')
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else \
        np.zeros((0, 4))
    return boxes


# --------------------------------------------------------------------- distortions
def _motion_blur(image: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``y = x * k``, ``k`` a normalised anti-aliased line of ``length`` px at a random angle."""
    angle = rng.uniform(0.0, math.pi)
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    c = (size - 1) / 2.0
    dx, dy = (length - 1) / 2.0 * math.cos(angle), (length - 1) / 2.0 * math.sin(angle)
    shift = 4  # sub-pixel precision of cv2.line
    p0 = (round((c - dx) * 16), round((c - dy) * 16))
    p1 = (round((c + dx) * 16), round((c + dy) * 16))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, shift)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def _jpeg(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip at ``quality`` (deterministic; ``rng`` unused)."""
    ok, buf = cv2.imencode('.jpg', image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError('cv2.imencode failed to encode the image as JPEG')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _salt_pepper(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Pixels with ``u < fraction`` (u ~ U(0, 1)) become 0 or 255 with equal odds."""
    h, w = image.shape[:2]
    u = rng.random((h, w), dtype=np.float32)
    salt = rng.random((h, w), dtype=np.float32) < 0.5
    out = image.copy()
    hit = u < fraction
    out[hit & salt] = 255
    out[hit & ~salt] = 0
    return out


def _add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``clip(round(x + noise), 0, 255)`` as uint8 (OpenCV's saturating add)."""
    return cv2.add(image.astype(np.float32), noise, dtype=cv2.CV_8U)


def _ngrn(image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``y = clip(x + a * u)``, ``u ~ U(-1, 1)`` i.i.d. (non-Gaussian random noise)."""
    noise = rng.random(image.shape, dtype=np.float32)
    noise -= 0.5
    noise *= 2.0 * amplitude
    return _add_noise(image, noise)


def _gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``y = clip(x + sigma * n)``, ``n ~ N(0, 1)`` i.i.d.

    ``n`` is drawn by inverse-CDF sampling from a table of 2^16 normal quantiles
    (16 random bits per value; tails beyond 4.3 sigma, p < 2e-5, are cut): twice as
    fast as ``Generator.standard_normal``, with the same distribution to 1/65536.
    """
    return _add_noise(image, _cc.standard_normal(image.shape, rng) * np.float32(sigma))


def _inpainting(image: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    """Remove random rectangles covering about ``area`` of the image; fill them by inpainting.

    Inpainting runs on a copy downscaled to at most 128 px a side (Telea, radius 3),
    is upscaled, and replaces only the removed pixels.
    """
    h, w = image.shape[:2]
    centers = rng.random((_INPAINT_REGIONS, 2))
    aspects = np.exp(rng.uniform(-0.7, 0.7, _INPAINT_REGIONS))
    side = math.sqrt(area * h * w / _INPAINT_REGIONS)
    mask = np.zeros((h, w), np.uint8)
    for (cx, cy), aspect in zip(centers, aspects):
        rw, rh = side * math.sqrt(aspect), side / math.sqrt(aspect)
        x0, x1 = round(cx * w - rw / 2), round(cx * w + rw / 2)
        y0, y1 = round(cy * h - rh / 2), round(cy * h + rh / 2)
        mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    if not mask.any():
        return image.copy()
    scale = min(1.0, _INPAINT_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0
        small_mask = cv2.dilate(small_mask.astype(np.uint8), np.ones((3, 3), np.uint8))
        filled = cv2.inpaint(small, small_mask, 3, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        filled = cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)
    out = image.copy()
    out[mask > 0] = filled[mask > 0]
    return out


def _targeted_occlusion(image: np.ndarray, fraction: float, rng: np.random.Generator,
                        boxes: np.ndarray) -> np.ndarray:
    """Cover ``fraction`` of every box with a uniform-noise patch of the box's aspect.

    Only pixels whose whole square lies inside a box change (columns
    ``ceil(x1) .. floor(x2) - 1``); boxes are clipped to the image first.
    """
    h, w = image.shape[:2]
    out = image.copy()
    scale = math.sqrt(fraction)
    for x1, y1, x2, y2 in boxes:
        # Random numbers first, so the same rng state gives nested patches over severities.
        u, v = rng.random(2)
        c0, c1 = max(math.ceil(x1), 0), min(math.floor(x2), w)
        r0, r1 = max(math.ceil(y1), 0), min(math.floor(y2), h)
        bw, bh = c1 - c0, r1 - r0
        texture = rng.integers(0, 256, (max(bh, 0), max(bw, 0), 3), dtype=np.uint8)
        if bw <= 0 or bh <= 0:
            continue
        pw, ph = max(1, round(bw * scale)), max(1, round(bh * scale))
        # Patch centre moves within the box so the patch stays inside it.
        cx = c0 + pw / 2 + u * (bw - pw)
        cy = r0 + ph / 2 + v * (bh - ph)
        px0, py0 = round(cx - pw / 2), round(cy - ph / 2)
        out[py0:py0 + ph, px0:px0 + pw] = texture[py0 - r0:py0 - r0 + ph, px0 - c0:px0 - c0 + pw]
    return out




# ------------------------------------------------------------- the table
@dataclass(frozen=True)
class DistortionSpec:
    """One distortion: its function, its severity parameter and the value for severities 1..5.

    ``function(image, level, rng)`` (``function(image, level, rng, boxes)`` when
    ``needs_boxes``) applies the distortion at ``level = levels[severity - 1]``.
    """

    function: Callable
    parameter: str
    levels: tuple
    description: str
    needs_boxes: bool = False


#: THE distortion table: one row per distortion, its function and one value per severity 1..5.
SEVERITY_TABLE: dict[str, DistortionSpec] = {
    'motion_blur': DistortionSpec(
        _motion_blur, 'kernel length (px)', (5, 9, 13, 19, 27),
        'line kernel at a random angle, applied with cv2.filter2D'),
    'jpeg': DistortionSpec(
        _jpeg, 'JPEG quality', (25, 15, 10, 6, 3),
        'cv2.imencode/imdecode round trip'),
    'salt_pepper': DistortionSpec(
        _salt_pepper, 'fraction of pixels', (0.02, 0.05, 0.09, 0.15, 0.25),
        'chosen pixels set to 0 or 255 (all channels, equal odds)'),
    'ngrn': DistortionSpec(
        _ngrn, 'uniform noise amplitude a (of 255)', (16, 32, 48, 72, 100),
        'non-Gaussian random noise: i.i.d. U(-a, a) added per pixel and channel'),
    'inpainting': DistortionSpec(
        _inpainting, 'fraction of image area removed', (0.03, 0.06, 0.10, 0.15, 0.22),
        '8 random rectangles removed, refilled by cv2.inpaint (Telea, r=3) at 128 px'),
    'targeted_occlusion': DistortionSpec(
        _targeted_occlusion, 'fraction of each box covered', (0.10, 0.20, 0.30, 0.45, 0.60),
        'a noise patch of the box aspect inside every ground-truth box', needs_boxes=True),
    'gaussian_noise': DistortionSpec(
        _gaussian_noise, 'noise sigma (of 255)', (10, 20, 30, 45, 60),
        'i.i.d. N(0, sigma^2) added per pixel and channel'),
}

#: The distortions of this project (the paper's six + Gaussian noise).
DISTORTIONS = tuple(SEVERITY_TABLE)

#: THE named sets of distortions (``--distortions NAME``, study configs' ``distortions``).
#: ``'all'`` keeps its meaning (this project's seven; committed studies rely on it).
PRESETS: dict[str, tuple[str, ...]] = {
    'all': DISTORTIONS,
    'paper': DISTORTIONS,
    'benchmark': BENCHMARK,
    'benchmark-extra': BENCHMARK_EXTRA,
}


def resolve_preset(names: str | Sequence[str]) -> tuple[str, ...]:
    """Presets expanded (:data:`PRESETS`) and every name checked, in order.

    With a preset among ``names`` repeats are dropped (``['all', 'jpeg']`` is the seven);
    without one the names are returned as given. A name that is neither a preset nor a
    distortion raises a ``ValueError`` listing both.
    """
    names = (names, ) if isinstance(names, str) else tuple(names)
    out, expanded = [], False
    for name in names:
        if isinstance(name, str) and name in PRESETS:
            out.extend(PRESETS[name])
            expanded = True
            continue
        try:
            out.append(check_distortion(name))
        except ValueError as err:
            raise ValueError(f'{err}; or a preset: {", ".join(PRESETS)}') from None
    return tuple(dict.fromkeys(out)) if expanded else tuple(out)


# ------------------------------------------------------------ common corruptions
class _NumpyWithFloat(types.ModuleType):
    """numpy as imagecorruptions 1.1.2 expects it: ``np.float_`` (removed in numpy 2.0)."""

    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


def _gaussian_with_multichannel(image, sigma=1, multichannel=None, **kwargs):
    """scikit-image's ``gaussian`` accepting the ``multichannel`` flag it dropped in 0.19."""
    from skimage.filters import gaussian
    if multichannel:
        kwargs.setdefault('channel_axis', -1)
    return gaussian(image, sigma=sigma, **kwargs)


def import_imagecorruptions():
    """The ``imagecorruptions`` package, with two shims for numpy >= 2 and scikit-image
    >= 0.19 in its module only (``np.float_`` for ``fog``; ``gaussian(multichannel=True)``
    for ``glass_blur``), which change no arithmetic; ``ImportError`` saying how to
    install it when it is absent."""
    try:
        import imagecorruptions
        from imagecorruptions import corruptions
    except ImportError as e:  # pragma: no cover - depends on the optional package
        raise ImportError(
            'The ic:<name> distortions need the optional package imagecorruptions '
            '(see requirements/optional.txt and docs/distortions.md): '
            'pip install --no-deps imagecorruptions scikit-image') from e
    if not hasattr(np, 'float_') and not isinstance(corruptions.np, _NumpyWithFloat):
        corruptions.np = _NumpyWithFloat('numpy')
    if getattr(corruptions, 'gaussian', None) is not None and \
            corruptions.gaussian is not _gaussian_with_multichannel:
        import inspect
        if 'multichannel' not in inspect.signature(corruptions.gaussian).parameters:
            corruptions.gaussian = _gaussian_with_multichannel
    return imagecorruptions


_import_ic = import_imagecorruptions


def _ic_available() -> bool:
    try:
        _import_ic()
    except ImportError:
        return False
    return True


def _common_corruption(image: np.ndarray, corruption: str, severity: int,
                       rng: np.random.Generator) -> np.ndarray:
    """imagecorruptions' version (RGB, global numpy RNG: seeded from ``rng`` and restored)."""
    ic = _import_ic()
    state = np.random.get_state()
    np.random.seed(int(rng.integers(0, 2**32 - 1)))
    try:
        out = ic.corrupt(np.ascontiguousarray(image[..., ::-1]), severity=severity,
                         corruption_name=corruption)
    except Exception as e:  # pragma: no cover - depends on the optional package's version
        raise RuntimeError(
            f'imagecorruptions failed on {corruption!r} ({type(e).__name__}: {e}). '
            'imagecorruptions 1.1.2 predates numpy 2 and scikit-image 0.19; '
            'import_imagecorruptions() shims the two breaks known (fog, glass_blur), see '
            'docs/distortions.md') from e
    finally:
        np.random.set_state(state)
    out = np.ascontiguousarray(np.asarray(out, dtype=np.uint8)[..., ::-1])
    if out.shape != image.shape:  # a few corruptions work on a resized canvas
        out = cv2.resize(out, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return out


# ------------------------------------------------------------------- entry point
def distort(image: np.ndarray, name: str, severity: int, rng: np.random.Generator,
            boxes: np.ndarray | Sequence | None = None) -> np.ndarray:
    """Apply distortion ``name`` at ``severity`` (1..5) to a uint8 HxWx3 image.

    Args:
        image: uint8 ``HxWx3`` (BGR) image; not modified.
        name: one of :data:`DISTORTIONS`, ``'c:<corruption>'`` (:data:`COMMON_CORRUPTIONS`)
            or ``'ic:<corruption>'``.
        severity: 1 (mild) .. 5 (strong); parameters in :data:`SEVERITY_TABLE` (``c:``:
            in :data:`~fq_det.datasets.common_corruptions.CORRUPTION_TABLE`).
        rng: the only source of randomness.
        boxes: ``(K, 4)`` xyxy pixel boxes; required by ``targeted_occlusion``.

    Returns:
        A new uint8 image of the same shape.
    """
    name = check_distortion(name)
    severity = check_severity(severity)
    _check_image(image)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator, got {type(rng).__name__}')
    if name.startswith(C_PREFIX):
        return _cc.corrupt(image, name[len(C_PREFIX):], severity, rng)
    if name.startswith(IC_PREFIX):
        return _common_corruption(image, name[len(IC_PREFIX):], severity, rng)
    spec = SEVERITY_TABLE[name]
    level = spec.levels[severity - 1]
    if spec.needs_boxes:
        return spec.function(image, level, rng, _check_boxes(boxes, name))
    return spec.function(image, level, rng)


def severity_table_markdown() -> str:
    """The severity table as Markdown (what docs/distortions.md shows)."""
    head = '| distortion | parameter | ' + ' | '.join(f'sev. {s}' for s in SEVERITIES) + \
        ' | how |'
    rows = [head, '|' + '---|' * (len(SEVERITIES) + 3)]
    for name, spec in SEVERITY_TABLE.items():
        rows.append(f'| `{name}` | {spec.parameter} | '
                    + ' | '.join(str(v) for v in spec.levels) + f' | {spec.description} |')
    return '\n'.join(rows)
