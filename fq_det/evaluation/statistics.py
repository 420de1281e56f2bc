"""How certain a robustness result is: intervals over seeds, paired differences and a paired
bootstrap over test images (the summaries themselves, P / mPC / rPC / mCE, are in
:mod:`fq_det.evaluation.summary`).

Over seeds (``n`` runs of one variant, values ``x_1 .. x_n``), the Student t interval::

    mean +- t_{(1+c)/2, n-1} * s / sqrt(n)        (s: sample standard deviation, c: 0.95)

The difference to the reference variant is paired by seed (``d_i = x_i - r_i``, the same
seed means the same data order, initialisation and distortion draws) and gets the same
interval on ``d``. The verdict is ``'better'`` when the whole interval lies on the good
side of 0, ``'worse'`` when it lies on the bad side, and ``'no detectable difference'``
otherwise (also when there are too few seeds for an interval).

Within one run, the paired bootstrap resamples the test images with replacement: one
weight vector ``w`` (multinomial counts, ``sum w = n_images``) per replicate is applied to
both models and to every condition, so each replicate is the same image sample
everywhere. The metric is recomputed per replicate from per-image records: top-1
correctness for classification (:func:`top1`), per-detection TP/FP flags for VOC AP50
and COCO bbox mAP (:mod:`fq_det.evaluation.detection_ap`: the matching happens inside
one image, so resampling images only reweights the flags). The interval is the
percentile interval of the replicates.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    'Interval', 't_interval', 'paired_difference', 'verdict', 'bootstrap_weights',
    'percentile_interval', 'top1', 'BETTER', 'WORSE', 'NO_DIFFERENCE'
]

BETTER = 'better'
WORSE = 'worse'
NO_DIFFERENCE = 'no detectable difference'


@dataclass(frozen=True)
class Interval:
    """A mean (or point estimate) with its confidence interval; ``nan`` bounds when undefined."""
    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def as_dict(self) -> dict:
        return dict(asdict(self), half_width=self.half_width)


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student t interval of ``values`` (non-finite values are left out)."""
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, confidence)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0:
        return Interval(mean, mean, mean, n, confidence)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, confidence)


def paired_difference(values: Mapping[int, float], reference: Mapping[int, float],
                      confidence: float = 0.95) -> Interval:
    """t interval of ``values[seed] - reference[seed]`` over the seeds both have."""
    seeds = sorted(set(values) & set(reference))
    return t_interval([values[s] - reference[s] for s in seeds], confidence)


def verdict(interval: Interval, higher_is_better: bool = True) -> str:
    """``better`` / ``worse`` when the interval of a difference excludes 0, else no difference."""
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return NO_DIFFERENCE
    if interval.low > 0:
        return BETTER if higher_is_better else WORSE
    if interval.high < 0:
        return WORSE if higher_is_better else BETTER
    return NO_DIFFERENCE


# ----------------------------------------------------------------------- bootstrap
def bootstrap_weights(num_images: int, num_replicates: int, seed: int = 0) -> np.ndarray:
    """``(num_replicates, num_images)`` multinomial counts: each row one resampled test set."""
    if num_images < 1 or num_replicates < 1:
        raise ValueError(f'need at least one image and one replicate, got {num_images} images, '
                         f'{num_replicates} replicates')
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_images, np.full(num_images, 1.0 / num_images),
                           size=num_replicates).astype(np.float64)


def percentile_interval(samples: np.ndarray, estimate: float,
                        confidence: float = 0.95) -> Interval:
    """Percentile interval of bootstrap ``samples`` around the full-sample ``estimate``."""
    s = _finite(np.asarray(samples).ravel())
    if len(s) == 0:
        return Interval(float(estimate), math.nan, math.nan, 0, confidence)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(s, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), len(s), confidence)


def top1(correct: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """Accuracy in percent of per-image ``correct`` flags; per replicate with ``weights``."""
    correct = np.asarray(correct, dtype=np.float64)
    if weights is None:
        return float(100 * correct.mean())
    return 100 * (weights @ correct) / weights.sum(axis=1)
