"""The 19 corruptions of the common-corruption benchmark, native (numpy / OpenCV / scipy).

The 15 benchmark corruptions of ImageNet-C / Pascal-C / COCO-C (Hendrycks and
Dietterich 2019; Michaelis et al. 2019) and the 4 held-out ones, with the severity
parameters of the ``imagecorruptions`` package (version 1.1.2), without depending on
it. Each corruption is a pure function ``f(image, severity, rng)`` of a uint8 ``HxWx3``
**BGR** image (as mmcv loads it), a severity in ``1..5`` and a
:class:`numpy.random.Generator`, the only source of randomness; it returns a new uint8
image of the same shape and never modifies its input.

Conventions, so that the maths follows the reference where it can:

* The reference computes ``y`` in ``[0, 1]`` (RGB) and returns ``np.uint8(255 * y)``:
  truncation, not rounding. So do these functions (``_to_uint8``).
* Colour order: where the reference's maths depends on it, it is done in RGB terms:
  ``brightness`` and ``saturate`` flip to RGB for the HSV round trip and back;
  ``snow``'s grey level takes OpenCV's BGR weights; ``spatter``'s water and mud
  colours are added in BGR order. The other corruptions treat the channels alike.
* Where the reference draws from numpy's global generator (or scikit-image's own),
  these draw from ``rng``, in the reference's order where it has one.
* Differences from the reference, by design: ``frost`` blends a procedural ice texture
  (the reference blends six photographs shipped in its package); ``glass_blur``
  computes the result of the reference's pixel loop as a few vectorised gathers (the
  same result for the same offsets); ``motion_blur`` and ``snow``'s streaks apply the
  reference's one-sided Gaussian line as one OpenCV kernel (the same weighted sum as
  its shift-and-add); ``jpeg_compression`` uses OpenCV's JPEG codec where the
  reference uses Pillow's (equal bytes with the pinned versions). See
  ``docs/distortions.md``.

The parameters of every corruption and severity are in one table,
:data:`CORRUPTION_TABLE` (rendered in ``docs/distortions.md`` by
:func:`corruption_table_markdown`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

__all__ = ['CORRUPTION_TABLE', 'CORRUPTIONS', 'BENCHMARK_CORRUPTIONS', 'EXTRA_CORRUPTIONS',
           'CorruptionSpec', 'corrupt', 'check_corruption', 'corruption_table_markdown',
           'plasma_fractal', 'frost_texture', 'standard_normal']

SEVERITIES = (1, 2, 3, 4, 5)


# --------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    """``Phi^-1((k + 0.5) / 2^16)``, k = 0 .. 2^16 - 1: N(0, 1) quantiles (|z| <= 4.3)."""
    from scipy.special import ndtri
    return ndtri((np.arange(2**16) + 0.5) / 2**16).astype(np.float32)


def standard_normal(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """float32 N(0, 1) values by inverse-CDF sampling from :func:`_normal_table`.

    16 random bits per value, tails beyond 4.3 sigma (p < 2e-5) cut: about twice as fast
    as ``Generator.standard_normal``, the same distribution to 1/65536. Shared with the
    project's own ``gaussian_noise``.
    """
    return _normal_table()[rng.integers(0, 2**16, size=shape, dtype=np.uint16)]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """``uint8(clip(x, 0, 255))``, truncating as the reference's ``np.uint8(255 * y)``."""
    return np.clip(x, 0, 255, out=x).astype(np.uint8)


def _gaussian_kernel(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: ``exp(-t^2 / 2 sigma^2)`` for
    ``|t| <= int(truncate sigma + 1/2)``, normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _gaussian_filter(x: np.ndarray, sigma, truncate: float = 4.0,
                     border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """scikit-image's ``gaussian`` (scipy's kernel; ``mode='nearest'`` = replicate) per channel.

    ``sigma`` is one value or ``(sigma_rows, sigma_cols)``; float32 or float64 in and out.
    """
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    return cv2.sepFilter2D(x, -1, _gaussian_kernel(sx, truncate),
                           _gaussian_kernel(sy, truncate), borderType=border)


def _clipped_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """The reference's ``clipped_zoom`` cropped to ``x``'s size: the central
    ``ceil(n / zoom)`` rows and columns, scaled by ``zoom`` with scipy's ``zoom(order=1)``
    coordinate map (``in = top + out * (crop - 1) / (round(crop * zoom) - 1)``), bilinear
    on OpenCV's 1/32-pixel interpolation grid."""
    h, w = x.shape[:2]
    ch, cw = int(math.ceil(h / zoom)), int(math.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = round(ch * zoom), round(cw * zoom)
    sy = (ch - 1) / (oh - 1) if oh > 1 else 0.0
    sx = (cw - 1) / (ow - 1) if ow > 1 else 0.0
    m = np.array([[sx, 0.0, left], [0.0, sy, top]], np.float64)
    return cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _clipped_zoom_exact(x: np.ndarray, zoom: float) -> np.ndarray:
    """The reference's ``clipped_zoom`` of a 2-D float64 array, not cropped (all
    ``round(crop * zoom)`` rows and columns), with scipy's linear interpolation computed
    exactly (separable, float64), not on OpenCV's 1/32-pixel grid: ``snow`` thresholds
    the zoomed layer, where that grid would move flakes."""
    out = x
    for axis in (0, 1):
        n = x.shape[axis]
        crop = int(math.ceil(n / zoom))
        top = (n - crop) // 2
        size = round(crop * zoom)
        pos = top + np.arange(size) * ((crop - 1) / (size - 1) if size > 1 else 0.0)
        i0 = np.minimum(np.floor(pos).astype(np.int64), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        f = pos - i0
        shape = [1, 1]
        shape[axis] = size
        f = f.reshape(shape)
        out = np.take(out, i0, axis=axis) * (1 - f) + np.take(out, i1, axis=axis) * f
    return out


def _motion_kernel(radius: int, sigma: float, angle_deg: float,
                   max_shift: tuple[int, int] | None = None) -> np.ndarray:
    """The reference's motion blur as one kernel: ``y(p) = sum_i k_i x(p + o_i)``.

    ``k_i = exp(-i^2 / 2 sigma^2) / Z`` for ``i = 0 .. 2 radius`` (a one-sided Gaussian),
    ``o_i = (ceil(i cos a - 1/2), ceil(i sin a - 1/2))`` (columns, rows); the reference
    stops at the first offset that leaves the image (``max_shift = (rows, cols)``).
    Use with :func:`cv2.filter2D` and ``BORDER_REPLICATE`` (the reference's edge fill).
    """
    width = 2 * int(radius) + 1
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-i ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    a = np.deg2rad(angle_deg)
    oy = np.ceil(i * np.sin(a) - 0.5).astype(int)
    ox = np.ceil(i * np.cos(a) - 0.5).astype(int)
    if max_shift is not None:
        inside = (np.abs(oy) < max_shift[0]) & (np.abs(ox) < max_shift[1])
        n = int(np.argmin(inside)) if not inside.all() else width
        weights, oy, ox = weights[:n], oy[:n], ox[:n]
    r = int(max(np.abs(oy).max(initial=0), np.abs(ox).max(initial=0)))
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    np.add.at(kernel, (r + oy, r + ox), weights)
    return kernel


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.Generator) -> np.ndarray:
    """The reference's diamond-square height map, ``mapsize`` a power of two, in ``[0, 1]``.

    Each step sets square centres, then diamond centres, to the mean of their four
    neighbours (``/ 4``) plus ``wibble * U(-wibble, wibble)``; ``wibble`` starts at 100
    and is divided by ``wibbledecay`` per step. Draws from ``rng`` in the reference's order.
    """
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f'plasma_fractal needs a power of two >= 2, got {mapsize}')
    m = np.zeros((mapsize, mapsize), np.float64)
    step, wibble = mapsize, 100.0

    def wibbled_mean(a: np.ndarray) -> np.ndarray:
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = m[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=0)
        squares += np.roll(squares, -1, axis=1)
        m[half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        dr = m[half:mapsize:step, half:mapsize:step]
        ul = m[0:mapsize:step, 0:mapsize:step]
        m[0:mapsize:step, half:mapsize:step] = wibbled_mean(
            dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        m[half:mapsize:step, 0:mapsize:step] = wibbled_mean(
            dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    m -= m.min()
    return m / m.max()


def frost_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural frost layer (uint8 BGR, ``h x w``): ice dendrites over a frozen haze.

    Not the reference's photographs: about one crystal per 90 px^2 of a half-resolution
    canvas, each a main needle (length ~ U(6, 30) px, random angle) with two pairs of
    side needles at +-60 degrees, drawn anti-aliased, slightly blurred, over a plasma
    haze; pale blue-white (BGR 255, 240, 225 at full intensity); mean about 0.4 of white.
    """
    ch, cw = max(2, (h + 1) // 2), max(2, (w + 1) // 2)
    n = max(1, round(ch * cw / 90))
    centres = rng.random((n, 2)) * (cw, ch)
    angles = rng.uniform(0, np.pi, n)
    lengths = rng.uniform(6, 30, n)
    levels = rng.uniform(0.35, 1.0, n)
    along = rng.uniform(0.2, 0.8, (n, 2))
    # main needle from c - L/2 d to c + L/2 d; side needles from points along it
    d = np.stack([np.cos(angles), np.sin(angles)], 1)
    p0, p1 = centres - 0.5 * lengths[:, None] * d, centres + 0.5 * lengths[:, None] * d
    segments = [np.stack([p0, p1], 1)]
    for k in range(2):
        base = p0 + (along[:, k] * lengths)[:, None] * d
        for turn in (np.pi / 3, -np.pi / 3):
            e = np.stack([np.cos(angles + turn), np.sin(angles + turn)], 1)
            segments.append(np.stack([base, base + (0.35 * lengths)[:, None] * e], 1))
    segs = np.concatenate(segments)                  # (6 n, 2, 2) x, y
    lev = np.tile(levels, len(segments))
    canvas = np.zeros((ch, cw), np.float32)
    shift = 4
    pts = np.round(segs * (1 << shift)).astype(np.int32)
    for lo, hi in ((0.35, 0.6), (0.6, 0.8), (0.8, 1.01)):  # three grey levels
        sel = (lev >= lo) & (lev < hi)
        if sel.any():
            layer = np.zeros_like(canvas)
            cv2.polylines(layer, list(pts[sel]), False, float((lo + hi) / 2), 1, cv2.LINE_AA,
                          shift)
            np.maximum(canvas, layer, out=canvas)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 0.7)
    size = 1 << max(1, int(math.ceil(math.log2(max(ch, cw)))))
    haze = plasma_fractal(size, 1.8, rng)[:ch, :cw].astype(np.float32)
    t = np.clip(0.9 * canvas + 0.45 * haze, 0, 1)
    t = cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)
    tint = np.array([255.0, 240.0, 225.0], np.float32)
    return (t[..., None] * tint).astype(np.uint8)


#: Which of (v, p, q, t) each channel takes in hue sectors 0..5 (scikit-image's hsv2rgb),
#: rows R, G, B.
_SECTOR_SOURCES = np.array([[0, 2, 1, 1, 3, 0],    # R: v q p p t v
                            [3, 0, 0, 2, 1, 1],    # G: t v v q p p
                            [1, 1, 3, 0, 0, 2]],   # B: p p t v v q
                           np.uint32)


def _hsv_planes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's ``rgb2hsv`` of a uint8 BGR image / 255, the same float64 operations,
    as three planes ``(h, s, v)``.

    ``V = max``, ``S = (max - min) / V`` (0 for grey), ``H = (h / 6) mod 1`` with ``h`` =
    ``(G - B) / d``, ``2 + (B - R) / d`` or ``4 + (R - G) / d`` for R, G or B the maximum
    (later ones win ties), 0 for grey.
    """
    b, g, r = (x[..., k] / 255.0 for k in range(3))
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    grey = delta == 0
    with np.errstate(invalid='ignore', divide='ignore'):
        s = delta / v
    s[grey] = 0.0
    g_max, b_max = g == v, b == v
    np.copyto(delta, 1.0, where=grey)
    h = np.subtract(g, b)
    np.subtract(b, r, out=h, where=g_max)
    np.subtract(r, g, out=h, where=b_max)
    h /= delta
    np.add(h, 2.0, out=h, where=g_max & ~b_max)
    np.add(h, 4.0, out=h, where=b_max)
    h /= 6.0
    np.remainder(h, 1.0, out=h)
    h[grey] = 0.0
    return h, s, v


def _hsv_planes_to_bgr(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """scikit-image's ``hsv2rgb``, the same operations, clipped to [0, 1] and truncated to
    uint8 BGR: ``p = V (1 - S)``, ``q = V (1 - f S)``, ``t = V (1 - (1 - f) S)``,
    ``f = 6 H - floor(6 H)``, chosen per channel by sector ``floor(6 H) mod 6``.

    Each candidate is converted to uint8 once and the four are packed into one uint32 per
    pixel, from which each channel takes its byte (clipping and truncation are per value, so
    converting before choosing gives the same bytes).
    """
    h6 = h * 6
    sector_f = np.floor(h6)
    f = h6 - sector_f
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    sector = sector_f.astype(np.uint8) % 6
    packed = _to_uint8(v * 255).astype(np.uint32)
    for k, candidate in enumerate((p, q, t), start=1):
        packed |= _to_uint8(candidate * 255).astype(np.uint32) << np.uint32(8 * k)
    channels = [(packed >> (_SECTOR_SOURCES[k] * 8)[sector]).astype(np.uint8)
                for k in (2, 1, 0)]
    return cv2.merge(channels)


# ------------------------------------------------------------------- corruptions
# Every function: (uint8 BGR image, the severity's parameters, rng) -> uint8 BGR image.
def _gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """``y = x + c n``, ``n ~ N(0, 1)`` per pixel and channel (x in [0, 1]; n by
    :func:`standard_normal`)."""
    n = standard_normal(x.shape, rng)
    n *= np.float32(255 * c)
    return _to_uint8(n + x)


def _shot_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """``y = Poisson(c x) / c`` per pixel and channel (x in [0, 1])."""
    lam = x * (c / 255.0)
    return _to_uint8(rng.poisson(lam).astype(np.float32) * np.float32(255.0 / c))


def _impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Each pixel and channel with ``u < c`` becomes 0 or 255 with equal odds.

    scikit-image's ``random_noise(mode='s&p', amount=c)``, which the reference uses,
    draws per channel from its own unseeded generator; this draws from ``rng``.
    """
    u = rng.random(x.shape, dtype=np.float32)
    hit = u < c
    salt = rng.random(dtype=np.float32, out=u) < 0.5
    out = x.copy()
    np.putmask(out, hit, salt.view(np.uint8) * np.uint8(255))
    return out


def _speckle_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """``y = x + x c n``, ``n ~ N(0, 1)`` per pixel and channel (:func:`standard_normal`)."""
    n = _speckle_table(c)[rng.integers(0, 2**16, size=x.shape, dtype=np.uint16)]
    n *= x
    return _to_uint8(n)


@functools.lru_cache(maxsize=8)
def _speckle_table(c: float) -> np.ndarray:
    """``1 + c z`` for every value ``z`` of :func:`_normal_table` (float32, the same operations
    as on each drawn value, so the same bytes as drawing ``z`` and then scaling)."""
    table = _normal_table() * np.float32(c)
    table += 1
    return table


def _gaussian_blur(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of std ``c`` px (scipy's kernel, truncated at 4 sigma, edge replicated)."""
    return _to_uint8(_gaussian_filter(x / 255.0, c) * 255)


def _glass_sources(h: int, w: int, delta: int, d: np.ndarray) -> np.ndarray:
    """Where each pixel's value comes from after one pass of the reference's pixel shuffle.

    The reference visits rows ``h - delta .. delta + 1`` (bottom up) and in each the
    columns ``w - delta .. delta + 1`` (right to left) and runs
    ``x[p], x[t] = x[t], x[p]`` with ``t = p + (dy, dx)``. On an RGB array ``x[p]`` is a
    view, so this copies rather than swaps: ``x[p]`` takes the *current* value at ``t``
    and ``x[t]`` keeps it. ``t`` is already final if it was visited before ``p`` (inside
    the visited block and later in raster order), else it still holds its value from
    before the pass. So ``source(p) = source(t)`` along such links and ``t`` at the first
    other one: followed for all pixels at once by pointer doubling.

    ``d[0]`` is dx and ``d[1]`` dy per visit, in visiting order, shape ``(2, rows,
    cols)``, values in ``-delta .. delta - 1``. Returns flat source indices, ``h x w``.
    """
    grid = np.arange(h * w, dtype=np.int32 if h * w < 2**31 else np.int64)
    nr, nc = d.shape[1:]
    if nr <= 0 or nc <= 0:
        return grid.reshape(h, w)
    rows = np.arange(h - delta, delta, -1, dtype=grid.dtype)[:, None]
    cols = np.arange(w - delta, delta, -1, dtype=grid.dtype)[None, :]
    tr, tc = rows + d[1], cols + d[0]
    p, t = rows * w + cols, tr * w + tc
    visited_before = (tr > delta) & (tr <= h - delta) & (tc > delta) & (tc <= w - delta) \
        & (t > p)
    nxt, val = grid.copy(), grid.copy()
    nxt[p] = np.where(visited_before, t, p)
    val[p] = t
    while True:
        jumped = nxt[nxt]
        if np.array_equal(jumped, nxt):
            break
        nxt = jumped
    return val[nxt].reshape(h, w)


def _glass_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Blur (sigma), ``iterations`` passes of the reference's local pixel shuffle, blur again.

    ``c = (sigma, delta, iterations)``. Each pass visits the pixels of rows and columns
    ``delta + 1 .. n - delta`` from the bottom-right corner up; each takes the current
    value at offset ``(dy, dx)``, both uniform in ``-delta .. delta - 1``
    (:func:`_glass_sources`: the reference's loop, exactly, without the loop); the
    offsets come from ``rng``.
    """
    sigma, delta, iterations = c
    h, w = x.shape[:2]
    y = _to_uint8(_gaussian_filter(x / 255.0, sigma) * 255)
    nr, nc = max(h - 2 * delta, 0), max(w - 2 * delta, 0)
    sources = None  # pass k reads pass k-1's output: compose the index maps, gather once
    for _ in range(iterations):
        d = rng.integers(-delta, delta, size=(2, nr, nc), dtype=np.int16)
        s = _glass_sources(h, w, delta, d).reshape(-1)
        sources = s if sources is None else sources[s]
    if sources is not None:
        y = np.stack([y[..., k].reshape(-1)[sources] for k in range(y.shape[2])], -1)
        y = y.reshape(x.shape)
    return _to_uint8(_gaussian_filter(y / 255.0, sigma) * 255)


def _defocus_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk: ``c = (radius, alias_blur)``.

    The reference's ``disk``: ``1[X^2 + Y^2 <= r^2]`` on ``-max(8, r) .. max(8, r)``,
    normalised, then ``cv2.GaussianBlur`` (3x3, or 5x5 for r > 8) of std ``alias_blur``.
    """
    radius, alias_blur = c
    side = 8 if radius <= 8 else int(radius)
    t = np.arange(-side, side + 1)
    xx, yy = np.meshgrid(t, t)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float32)
    disk /= disk.sum()
    disk = cv2.GaussianBlur(disk, (3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)
    return _to_uint8(cv2.filter2D(x / 255.0, -1, disk.astype(np.float64),
                                  borderType=cv2.BORDER_REFLECT_101) * 255)


def _motion_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """The reference's one-sided Gaussian line ``c = (radius, sigma)`` at angle ~ U(-45, 45) deg."""
    radius, sigma = c
    angle = rng.uniform(-45, 45)
    kernel = _motion_kernel(radius, sigma, angle, x.shape[:2])
    return _to_uint8(cv2.filter2D(x.astype(np.float64), -1, kernel,
                                  borderType=cv2.BORDER_REPLICATE))


def _zoom_factors(c: tuple) -> np.ndarray:
    """``np.arange(1, stop, step)`` for ``c = (stop, step)``, as the reference spells them."""
    return np.arange(1, c[0], c[1])


def _zoom_blur(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """``y = (x + sum_z zoom_z(x)) / (1 + #z)`` over zoom factors ``z = arange(1, stop, step)``."""
    xf = x.astype(np.float32)
    factors = _zoom_factors(c)
    out = xf.copy()
    for z in factors:
        out += _clipped_zoom(xf, float(z))
    out /= np.float32(len(factors) + 1)
    return _to_uint8(out)


def _snow(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Snow flakes: zoomed, thresholded normal noise, motion-blurred, added twice; a grey haze.

    ``c = (mean, std, zoom, threshold, blur radius, blur sigma, blend)``: flakes ``f`` =
    ``N(mean, std)``, zoomed by ``zoom`` (the whole zoomed layer, a little larger than
    the image), 0 below ``threshold``, clipped to [0, 1], motion-blurred at angle
    ~ U(-135, -45) deg, rounded to 1/255, cropped to the image; then
    ``y = b x + (1 - b) max(x, 1.5 grey(x) + 0.5) + f + rot180(f)``.
    """
    mean, std, zoom, threshold, radius, sigma, blend = c
    h, w = x.shape[:2]
    flakes = rng.normal(mean, std, (h, w))
    angle = rng.uniform(-135, -45)
    flakes = _clipped_zoom_exact(flakes, zoom)
    flakes[flakes < threshold] = 0
    np.clip(flakes, 0, 1, out=flakes)
    flakes = cv2.filter2D(flakes, -1, _motion_kernel(radius, sigma, angle, flakes.shape),
                          borderType=cv2.BORDER_REPLICATE)
    flakes = (np.round(flakes * 255).astype(np.uint8) / 255.)[:h, :w]
    xf = x.astype(np.float32) / 255
    grey = cv2.cvtColor(xf, cv2.COLOR_BGR2GRAY)[..., None]
    y = blend * xf + (1 - blend) * np.maximum(xf, grey * 1.5 + 0.5)
    y += (flakes + flakes[::-1, ::-1])[..., None]
    return _to_uint8(y * 255)


def _frost(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """``y = a x + b frost``, ``c = (a, b)``; ``frost`` from :func:`frost_texture` (procedural)."""
    a, b = c
    texture = frost_texture(x.shape[0], x.shape[1], rng)
    return _to_uint8(a * x.astype(np.float32) + b * texture.astype(np.float32))


def _fog(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """``y = (x + a F) m / (m + a)``, ``F`` the plasma fractal (decay ``c[1]``), ``m = max x``.

    ``c = (a, decay)``; ``F`` is ``next_power_of_two(max(h, w))`` square, cropped.
    """
    a, decay = c
    h, w = x.shape[:2]
    size = 1 << max(1, (max(h, w, 3) - 1).bit_length())
    fractal = plasma_fractal(size, decay, rng)[:h, :w, None].astype(np.float32)
    xf = x.astype(np.float32) / 255
    m = float(xf.max())
    return _to_uint8((xf + a * fractal) * np.float32(255 * m / (m + a)))


#: Pixels per block of the HSV round trip: its float64 temporaries (64 KB) stay in the
#: allocator's heap instead of fresh memory maps, whose page faults cost more than the maths.
_HSV_BLOCK_PIXELS = 8192


def _hsv_map(x: np.ndarray, change: Callable) -> np.ndarray:
    """``change(h, s, v) -> (h, s, v)`` applied in HSV to a uint8 BGR image, block of rows by
    block of rows (every operation is per pixel, so the bytes do not depend on the blocks)."""
    out = np.empty_like(x)
    rows = max(1, _HSV_BLOCK_PIXELS // max(1, x.shape[1]))
    for top in range(0, x.shape[0], rows):
        out[top:top + rows] = _hsv_planes_to_bgr(*change(*_hsv_planes(x[top:top + rows])))
    return out


def _brightness(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """HSV value ``V' = clip(V + c, 0, 1)`` (hue and saturation kept), in RGB terms."""
    return _hsv_map(x, lambda h, s, v: (h, s, np.clip(v + c, 0, 1)))


def _contrast_per_pixel(x: np.ndarray, c: float) -> np.ndarray:
    """The reference's operations on every pixel: ``(x / 255 - m) c + m``, float64."""
    xf = x / 255.0
    means = np.mean(xf, axis=(0, 1), keepdims=True)
    return _to_uint8(np.clip((xf - means) * c + means, 0, 1) * 255)


def _contrast_table(x: np.ndarray, c: float) -> np.ndarray | None:
    """The 256 x 3 table of :func:`_contrast_per_pixel`'s outputs, or None if not provably equal.

    Each output depends only on the value ``v`` and its channel's mean ``m``. The
    reference's ``m`` is a float64 sum whose last bits depend on the summation order; any
    order is within ``|m_ref - m| <= gamma m``, ``gamma = (n + 2) u`` (recursive summation
    of ``n`` terms, Higham 2002, Eq. 4.4, plus the divisions; ``u = 2^-53``), of the exact
    mean ``m`` (from OpenCV's integer sums). An output moves by at most ``|1 - c| gamma m``
    (plus rounding), so where every entry's truncation is the same at both ends of that
    interval the table equals the reference's outputs; else None.
    """
    n = x.shape[0] * x.shape[1]
    means = np.asarray(cv2.sumElems(x)[:x.shape[2]]) / (255.0 * n)
    margin = abs(1 - c) * 2 * (n + 2) * 2.0 ** -53 * means + 1e-12
    z = (np.arange(256)[:, None] / 255.0 - means) * c + means
    lo = np.floor(np.clip(z - margin, 0, 1) * 255)
    hi = np.floor(np.clip(z + margin, 0, 1) * 255)
    if not np.array_equal(lo, hi):
        return None
    return lo.astype(np.uint8)


def _contrast(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """``y = (x - mean) c + mean``, the mean per channel over the image.

    Applied as a per-channel lookup table where that provably gives the reference's
    bytes (:func:`_contrast_table`), else per pixel.
    """
    table = _contrast_table(x, c)
    if table is None:
        return _contrast_per_pixel(x, c)
    return cv2.LUT(x, table.reshape(256, 1, 3))


def _saturate(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """HSV saturation ``S' = clip(S a + b, 0, 1)``, ``c = (a, b)`` (hue and value kept), in RGB
    terms (grey pixels have hue 0, red, so ``b > 0`` tints them red)."""
    a, b = c
    return _hsv_map(x, lambda h, s, v: (h, np.clip(s * a + b, 0, 1), v))


def _jpeg_compression(x: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip at quality ``c`` (OpenCV's libjpeg, 4:2:0, like Pillow's default)."""
    ok, buf = cv2.imencode('.jpg', x, [int(cv2.IMWRITE_JPEG_QUALITY), int(c)])
    if not ok:
        raise RuntimeError('cv2.imencode failed to encode the image as JPEG')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _pixelate(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Pillow's ``BOX`` downscale to ``int(c w) x int(c h)`` (at least 1 px), then its
    ``NEAREST`` upscale back: the reference's own calls (channels are treated alike, so the
    colour order does not matter)."""
    from PIL import Image
    h, w = x.shape[:2]
    small = Image.fromarray(np.ascontiguousarray(x)).resize(
        (max(1, int(w * c)), max(1, int(h * c))), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST)).copy()


def _elastic_transform(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    """Resample at ``p + alpha G_s * u``, ``u ~ U(-h/200, h/200)`` per pixel and axis.

    ``alpha = c``; ``G_s`` a Gaussian of std ``(h, w) / 100`` truncated at 3 sigma
    (scipy's ``reflect`` border); bilinear resampling with reflected borders.
    """
    h, w = x.shape[:2]
    mx = h * 0.005
    dx = rng.uniform(-mx, mx, (h, w))
    dy = rng.uniform(-mx, mx, (h, w))
    sigma = (h * 0.01, w * 0.01)
    dx = (_gaussian_filter(dx, sigma, 3.0, cv2.BORDER_REFLECT) * c).astype(np.float32)
    dy = (_gaussian_filter(dy, sigma, 3.0, cv2.BORDER_REFLECT) * c).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(x.astype(np.float32), gx + dx, gy + dy, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT)
    return _to_uint8(out)


def _spatter(x: np.ndarray, c: tuple, rng: np.random.Generator) -> np.ndarray:
    """Water drops (``mud = 0``) or mud splashes (``mud = 1``) from blurred normal noise.

    ``c = (mean, std, sigma, threshold, intensity, mud)``: ``L = G_sigma * N(mean, std)``,
    0 below ``threshold``. Water: the reference's Canny / distance-transform / emboss
    shading of ``L`` times ``intensity``, tinted pale turquoise (RGB 175, 238, 238) and
    added. Mud: the mask ``L > threshold`` blurred by ``intensity``, 0 below 0.8, replaces
    the image by mud brown (RGB 63, 42, 20).
    """
    mean, std, sigma, threshold, intensity, mud = c
    h, w = x.shape[:2]
    xf = x.astype(np.float32) / 255
    liquid = _gaussian_filter(rng.normal(mean, std, (h, w)), sigma)
    liquid[liquid < threshold] = 0
    if not mud:
        liquid8 = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid8, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = liquid8 * dist
        peak = float(m.max())
        m = m / peak * intensity if peak > 0 else m
        colour = np.array([238, 238, 175], np.float32) / 255  # pale turquoise, BGR
        y = np.clip(xf + m[..., None] * colour, 0, 1)
        return _to_uint8(y * 255)
    mask = _gaussian_filter((liquid > threshold).astype(np.float32), intensity)
    mask[mask < 0.8] = 0
    colour = np.array([20, 42, 63], np.float32) / 255  # mud brown, BGR
    y = xf * (1 - mask[..., None]) + mask[..., None] * colour
    return _to_uint8(np.clip(y, 0, 1) * 255)


# ------------------------------------------------------------------- the table
@dataclass(frozen=True)
class CorruptionSpec:
    """One corruption: its function, what its parameters mean, their value per severity 1..5.

    ``function(image, levels[severity - 1], rng)``; ``random`` is False where the result
    does not depend on ``rng``; ``benchmark`` is False for the four held-out ones.
    """

    function: Callable
    parameter: str
    levels: tuple
    description: str
    random: bool = True
    benchmark: bool = True


#: THE corruption table: imagecorruptions 1.1.2's parameters, one entry per severity 1..5.
CORRUPTION_TABLE: dict[str, CorruptionSpec] = {
    'gaussian_noise': CorruptionSpec(
        _gaussian_noise, 'std c (of 1)', (0.08, 0.12, 0.18, 0.26, 0.38),
        'x + c N(0, 1)'),
    'shot_noise': CorruptionSpec(
        _shot_noise, 'photons c at white', (60, 25, 12, 5, 3),
        'Poisson(c x) / c'),
    'impulse_noise': CorruptionSpec(
        _impulse_noise, 'fraction c', (0.03, 0.06, 0.09, 0.17, 0.27),
        'a fraction c of values (per channel) set to 0 or 1'),
    'defocus_blur': CorruptionSpec(
        _defocus_blur, '(disk radius, alias blur)', ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5),
                                                    (10, 0.5)),
        'anti-aliased disk kernel', random=False),
    'glass_blur': CorruptionSpec(
        _glass_blur, '(sigma, max shift, iterations)', ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3),
                                                       (1.1, 3, 2), (1.5, 4, 2)),
        'blur, local pixel shuffle, blur'),
    'motion_blur': CorruptionSpec(
        _motion_blur, '(radius, sigma)', ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
        'one-sided Gaussian line kernel at U(-45, 45) deg'),
    'zoom_blur': CorruptionSpec(
        _zoom_blur, 'zoom factors arange(1, stop, step): (stop, step)',
        ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
        'mean of the image and its central zooms', random=False),
    'snow': CorruptionSpec(
        _snow, '(mean, std, zoom, threshold, radius, sigma, blend)',
        ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
         (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
         (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
        'motion-blurred flakes from zoomed noise, grey haze'),
    'frost': CorruptionSpec(
        _frost, '(image weight, frost weight)', ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7),
                                                (0.6, 0.75)),
        'a x + b frost; procedural frost texture (not the reference photos)'),
    'fog': CorruptionSpec(
        _fog, '(fog weight, fractal decay)', ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5),
                                             (3.0, 1.4)),
        'plasma fractal added, rescaled'),
    'brightness': CorruptionSpec(
        _brightness, 'HSV value shift c', (0.1, 0.2, 0.3, 0.4, 0.5),
        'V + c in HSV', random=False),
    'contrast': CorruptionSpec(
        _contrast, 'contrast factor c', (0.4, 0.3, 0.2, 0.1, 0.05),
        '(x - mean) c + mean per channel', random=False),
    'elastic_transform': CorruptionSpec(
        _elastic_transform, 'displacement scale alpha',
        (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12),
        'smoothed random displacement field, bilinear'),
    'pixelate': CorruptionSpec(
        _pixelate, 'scale c', (0.6, 0.5, 0.4, 0.3, 0.25),
        'box downscale by c, nearest upscale', random=False),
    'jpeg_compression': CorruptionSpec(
        _jpeg_compression, 'JPEG quality', (25, 18, 15, 10, 7),
        'JPEG round trip', random=False),
    # held out from the benchmark (validation corruptions)
    'speckle_noise': CorruptionSpec(
        _speckle_noise, 'std c', (0.15, 0.2, 0.35, 0.45, 0.6),
        'x + x c N(0, 1)', benchmark=False),
    'gaussian_blur': CorruptionSpec(
        _gaussian_blur, 'sigma (px)', (1, 2, 3, 4, 6),
        'Gaussian blur, truncated at 4 sigma', random=False, benchmark=False),
    'spatter': CorruptionSpec(
        _spatter, '(mean, std, sigma, threshold, intensity, mud)',
        ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
         (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
         (0.67, 0.4, 1, 0.65, 1.5, 1)),
        'water drops (sev. 1-3) or mud (sev. 4-5)', benchmark=False),
    'saturate': CorruptionSpec(
        _saturate, 'HSV saturation (factor a, shift b)', ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1),
                                                         (20, 0.2)),
        'S a + b in HSV', random=False, benchmark=False),
}

#: All 19, in the table's order (the 15 benchmark ones first).
CORRUPTIONS = tuple(CORRUPTION_TABLE)
#: The 15 corruptions of the benchmark (ImageNet-C, Pascal-C, COCO-C).
BENCHMARK_CORRUPTIONS = tuple(n for n, s in CORRUPTION_TABLE.items() if s.benchmark)
#: The 4 held-out corruptions.
EXTRA_CORRUPTIONS = tuple(n for n, s in CORRUPTION_TABLE.items() if not s.benchmark)


# ------------------------------------------------------------------- entry points
def check_corruption(name: str) -> str:
    """``name`` if it is one of :data:`CORRUPTIONS`, else ``ValueError`` listing them."""
    if isinstance(name, str) and name in CORRUPTION_TABLE:
        return name
    raise ValueError(f'Unknown common corruption {name!r}; valid choices: '
                     f'{", ".join(CORRUPTIONS)}')


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Corruption ``name`` at ``severity`` (1..5) of a uint8 ``HxWx3`` BGR image.

    No checks of the image, severity or generator beyond the name: use
    :func:`fq_det.datasets.distortions.distort` (``'c:<name>'``) for the checked route.
    """
    spec = CORRUPTION_TABLE[check_corruption(name)]
    return spec.function(image, spec.levels[int(severity) - 1], rng)


def _cell(level) -> str:
    if isinstance(level, tuple):
        return '(' + ', '.join(_cell(v) for v in level) + ')'
    return f'{level:g}' if isinstance(level, float) else str(level)


def corruption_table_markdown() -> str:
    """The corruption table as Markdown (what docs/distortions.md shows)."""
    head = '| corruption | parameter | ' + ' | '.join(f'sev. {s}' for s in SEVERITIES) + \
        ' | how |'
    rows = [head, '|' + '---|' * (len(SEVERITIES) + 3)]
    for name, spec in CORRUPTION_TABLE.items():
        label = f'`c:{name}`' + ('' if spec.benchmark else ' (held out)')
        rows.append(f'| {label} | {spec.parameter} | '
                    + ' | '.join(_cell(v) for v in spec.levels)
                    + f' | {spec.description}{"" if spec.random else "; deterministic"} |')
    return '\n'.join(rows)
