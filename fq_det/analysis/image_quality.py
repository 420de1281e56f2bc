"""How far a corrupted image is from the clean one: PSNR and SSIM, and their means per
(corruption, severity) over images and random draws (the reference comparison of the
common corruptions, ``docs/distortions.md``).

    PSNR = 10 log10(255^2 / mean((x - y)^2))                      (dB; inf when x == y)

    SSIM = mean over pixels and channels of
           (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))

with Gaussian-weighted local statistics (sigma 1.5, 11x11 window, reflected borders),
``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2`` (Wang et al. 2004). Both treat the
channels alike, so they do not depend on the colour order.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

__all__ = ['psnr', 'ssim', 'quality_statistics']

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def psnr(clean: np.ndarray, other: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (``inf`` when equal)."""
    mse = float(np.mean((clean.astype(np.float64) - other.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)


def ssim(clean: np.ndarray, other: np.ndarray) -> float:
    """Structural similarity of two uint8 images (see the module docstring)."""
    x, y = clean.astype(np.float64), other.astype(np.float64)
    mx, my = _blur(x), _blur(y)
    sxx, syy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
    num = (2 * mx * my + _C1) * (2 * sxy + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return float(np.mean(num / den))


def _mean_and_draw_se(values: np.ndarray) -> tuple[float, float]:
    """Mean of ``(images, draws)`` values and its standard error from the draws alone
    (the images are the same on both sides of a comparison):
    ``sqrt(sum_i var_i / draws) / images``, ``var_i`` the sample variance of image ``i``."""
    images, draws = values.shape
    var = values.var(axis=1, ddof=1) if draws > 1 else np.zeros(images)
    return float(values.mean()), float(math.sqrt(var.sum() / draws) / images)


def quality_statistics(corrupt: Callable[[np.ndarray, int, int, int], np.ndarray],
                       images: Sequence[np.ndarray], severities: Iterable[int],
                       draws: int) -> dict[int, dict[str, float]]:
    """Per severity: mean PSNR and SSIM over images x draws, with their standard errors
    from the draws (:func:`_mean_and_draw_se`).

    ``corrupt(image, image_index, severity, draw)`` returns the corrupted uint8 image.
    An infinite PSNR (an unchanged image) counts as 100 dB.
    """
    out = {}
    for severity in severities:
        p = np.zeros((len(images), draws))
        s = np.zeros((len(images), draws))
        for i, image in enumerate(images):
            for draw in range(draws):
                result = corrupt(image, i, severity, draw)
                p[i, draw], s[i, draw] = min(psnr(image, result), 100.0), ssim(image, result)
        (pm, pse), (sm, sse) = _mean_and_draw_se(p), _mean_and_draw_se(s)
        out[int(severity)] = dict(psnr=pm, psnr_se=pse, ssim=sm, ssim_se=sse, n=int(p.size))
    return out
