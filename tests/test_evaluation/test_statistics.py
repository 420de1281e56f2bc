"""The study statistics: intervals against hand-computed numbers, the bootstrap, verdicts,
mCE, and the paired bootstrap of two sweeps (the weighted VOC AP: tests/test_evaluation/test_detection_ap.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fq_det.evaluation import statistics as st
from fq_det.evaluation.summary import corruption_errors


def test_t_interval_known_numbers() -> None:
    iv = st.t_interval([1, 2, 3, 4, 5])
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.7764451; half width = t * s / sqrt(5)
    assert iv.mean == pytest.approx(3.0)
    assert iv.half_width == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert (iv.low, iv.high) == pytest.approx((1.0367568, 4.9632432), rel=1e-6)
    assert iv.n == 5
    iv90 = st.t_interval([1, 2, 3, 4, 5], confidence=0.9)  # t(0.95, 4) = 2.1318468
    assert iv90.half_width == pytest.approx(2.1318468 * math.sqrt(0.5), rel=1e-6)


def test_t_interval_degenerate_cases() -> None:
    one = st.t_interval([0.7])
    assert one.mean == 0.7 and math.isnan(one.low) and one.n == 1
    assert st.t_interval([]).n == 0
    same = st.t_interval([0.5, 0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)
    assert st.t_interval([1.0, float('nan'), 3.0]).n == 2  # non-finite values are left out
    with pytest.raises(ValueError, match='confidence'):
        st.t_interval([1, 2], confidence=1.5)


def test_paired_difference_uses_common_seeds() -> None:
    diff = st.paired_difference({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.5, 1: 1.0, 2: 2.5, 3: 9.0})
    # d = [0.5, 1.0, 1.5]: mean 1, s 0.5, t(0.975, 2) = 4.3026527
    assert diff.n == 3 and diff.mean == pytest.approx(1.0)
    assert diff.half_width == pytest.approx(4.3026527 * 0.5 / math.sqrt(3), rel=1e-6)
    assert st.verdict(diff) == st.NO_DIFFERENCE  # [-0.24, 2.24] contains 0
    clear = st.paired_difference({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.5, 1: 1.0, 2: 3.0})
    assert clear.low > 0  # d = [0.5, 1, 1]: 0.83 +- 0.72
    assert st.verdict(clear) == st.BETTER
    assert st.verdict(clear, higher_is_better=False) == st.WORSE


def test_verdicts() -> None:
    assert st.verdict(st.Interval(-0.1, -0.2, -0.01, 3)) == st.WORSE
    assert st.verdict(st.Interval(0.0, -0.1, 0.1, 3)) == st.NO_DIFFERENCE
    assert st.verdict(st.Interval(0.3, math.nan, math.nan, 1)) == st.NO_DIFFERENCE
    assert st.verdict(st.Interval(-0.1, -0.2, -0.01, 3), higher_is_better=False) == st.BETTER


def test_bootstrap_weights_and_percentiles() -> None:
    w = st.bootstrap_weights(7, 500, seed=3)
    assert w.shape == (500, 7) and np.all(w.sum(axis=1) == 7)
    assert np.array_equal(w, st.bootstrap_weights(7, 500, seed=3))
    iv = st.percentile_interval(np.arange(1001, dtype=float), estimate=500.0)
    assert (iv.low, iv.high) == pytest.approx((25.0, 975.0))
    with pytest.raises(ValueError, match='at least one image'):
        st.bootstrap_weights(0, 10)


def test_top1_weighted() -> None:
    correct = np.array([1, 0, 1, 1], dtype=bool)
    assert st.top1(correct) == pytest.approx(75.0)
    w = np.array([[4, 0, 0, 0], [0, 2, 0, 2], [1, 1, 1, 1]], dtype=float)
    assert st.top1(correct, w) == pytest.approx([100.0, 50.0, 75.0])


def test_corruption_errors_known_numbers() -> None:
    model = {'blur': {1: 0.8, 2: 0.6}, 'noise': {1: 0.5, 2: 0.5}}
    ref = {'blur': {1: 0.7, 2: 0.5}, 'noise': {1: 0.5, 2: 0.5}}
    ce = corruption_errors(model, 0.9, ref, 0.8)
    # blur: CE = (0.2 + 0.4) / (0.3 + 0.5); rCE = (0.1 + 0.3) / (0.1 + 0.3); noise: 1 and 0.8/0.6
    assert ce['CE'] == pytest.approx({'blur': 0.75, 'noise': 1.0})
    assert ce['rCE'] == pytest.approx({'blur': 1.0, 'noise': 0.8 / 0.6})
    assert ce['mCE'] == pytest.approx(0.875)
    assert ce['relative_mCE'] == pytest.approx((1.0 + 0.8 / 0.6) / 2)
    pct = corruption_errors({'b': {1: 80.0}}, 90.0, {'b': {1: 60.0}}, 90.0, full=100.0)
    assert pct['mCE'] == pytest.approx(0.5)


def test_sweep_bootstrap_pairs_two_sweeps_image_by_image(tmp_path) -> None:
    """From the sweeps' per-image files: the point difference is the difference of the
    sweeps' own mAPs (mmdet's eval_map through voc_map_of_subset), with an interval around it."""
    from test_per_image import CLASSES, _det_samples

    from fq_det.evaluation.per_image import PerImageDetRecords, load_per_image, voc_map_of_subset
    from fq_det.evaluation.robustness import per_image_file
    from fq_det.studies.records import sweep_bootstrap

    def write(model: str, seed_of: dict) -> None:
        for distortion, severity in ((None, 0), ('jpeg', 2)):
            out = per_image_file(str(tmp_path / model), distortion, severity, 0)
            metric = PerImageDetRecords(out_file=out)
            metric.dataset_meta = dict(classes=CLASSES)
            samples = _det_samples(30, seed=seed_of[distortion])
            metric.process({}, samples)
            metric.evaluate(len(samples))

    write('plain', {None: 0, 'jpeg': 1})
    write('pow', {None: 0, 'jpeg': 2})  # same clean predictions, other jpeg predictions
    boot = sweep_bootstrap({'plain': tmp_path / 'plain', 'pow': tmp_path / 'pow'}, 'plain',
                           'detection', ['jpeg'], [2], replicates=200)['pow']
    assert boot['P']['mean'] == pytest.approx(0.0) and boot['P']['low'] == boot['P']['high'] == 0
    maps = {m: voc_map_of_subset(load_per_image(per_image_file(str(tmp_path / m), 'jpeg', 2, 0)),
                                 np.arange(30)) for m in ('plain', 'pow')}
    assert boot['jpeg']['mean'] == pytest.approx(maps['pow'] - maps['plain'], abs=1e-6)
    assert boot['jpeg']['low'] < boot['jpeg']['mean'] < boot['jpeg']['high']
    assert set(boot) == {'P', 'jpeg', 'mPC', 'rPC'}
