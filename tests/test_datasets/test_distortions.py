"""The pure distortion functions: contract, monotone strength, determinism, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fq_det.datasets import distortions as D

BOXES = np.array([[20.0, 15.0, 90.0, 80.0],
                  [100.4, 60.7, 190.2, 140.9],
                  [170.0, 5.0, 260.0, 40.0],    # partly outside a 200-px-wide image
                  [50.0, 50.0, 50.5, 90.0]])    # no whole pixel inside


def natural_image(h: int = 150, w: int = 200, seed: int = 0) -> np.ndarray:
    """Smooth shading + band-limited texture + flat objects: looks like a photo to a filter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = 120 + 50 * np.sin(xx / 23 + c) * np.cos(yy / 31 - c) \
            + 25 * np.sin((xx + yy) / 11.0)
    img += cv2.GaussianBlur(rng.normal(0, 40, (h, w, 3)).astype(np.float32), (0, 0), 2.5)
    cv2.rectangle(img, (30, 25), (80, 70), (30, 200, 90), -1)
    cv2.circle(img, (140, 100), 30, (220, 40, 40), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_public_names_and_one_table():
    assert D.DISTORTIONS == ('motion_blur', 'jpeg', 'salt_pepper', 'ngrn', 'inpainting',
                             'targeted_occlusion', 'gaussian_noise')
    assert D.SEVERITIES == (1, 2, 3, 4, 5)
    table = D.severity_table_markdown()
    for name, spec in D.SEVERITY_TABLE.items():
        assert len(spec.levels) == 5
        assert f'`{name}`' in table
    assert [d for d in D.DISTORTIONS if D.needs_boxes(d)] == ['targeted_occlusion']


def test_docs_show_the_code_table(repo_root):
    assert D.severity_table_markdown() in (repo_root / 'docs' / 'distortions.md').read_text()


@pytest.mark.parametrize('name', D.DISTORTIONS)
def test_shape_dtype_kept_and_input_untouched(name):
    img = natural_image(97, 131)
    before = img.copy()
    for severity in (1, 5):
        out = D.distort(img, name, severity, np.random.default_rng(0), boxes=BOXES[:2] * 0.6)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert out is not img and not np.array_equal(out, img)
    assert np.array_equal(img, before)


@pytest.mark.parametrize('name', D.DISTORTIONS)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_psnr_strictly_decreasing_with_severity(name, seed):
    img = natural_image(seed=seed)
    values = [psnr(img, D.distort(img, name, s, np.random.default_rng(seed), boxes=BOXES))
              for s in D.SEVERITIES]
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize('name', D.DISTORTIONS)
def test_same_generator_state_same_bytes(name):
    img = natural_image()
    a = D.distort(img, name, 3, np.random.default_rng(7), boxes=BOXES)
    b = D.distort(img, name, 3, np.random.default_rng(7), boxes=BOXES)
    assert a.tobytes() == b.tobytes()
    if name != 'jpeg':  # the only deterministic one
        c = D.distort(img, name, 3, np.random.default_rng(8), boxes=BOXES)
        assert a.tobytes() != c.tobytes()


def test_targeted_occlusion_changes_only_pixels_inside_boxes():
    img = natural_image()
    h, w = img.shape[:2]
    inside = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in BOXES:  # pixels whose whole square is inside the box
        inside[max(int(np.ceil(y1)), 0):min(int(np.floor(y2)), h),
               max(int(np.ceil(x1)), 0):min(int(np.floor(x2)), w)] = True
    for severity in D.SEVERITIES:
        out = D.distort(img, 'targeted_occlusion', severity, np.random.default_rng(3), BOXES)
        changed = np.any(out != img, axis=2)
        assert not np.any(changed & ~inside)
        for x1, y1, x2, y2 in BOXES[:3]:  # every box with pixels gets a patch
            box = changed[int(np.ceil(y1)):int(np.floor(y2)), int(np.ceil(x1)):int(np.floor(x2))]
            frac = box.mean()
            assert 0.5 * D.SEVERITY_TABLE['targeted_occlusion'].levels[severity - 1] < frac


def test_targeted_occlusion_boxes_required_but_may_be_empty():
    img = natural_image()
    with pytest.raises(ValueError, match='needs ground-truth boxes.*LoadAnnotations'):
        D.distort(img, 'targeted_occlusion', 1, np.random.default_rng(0))
    out = D.distort(img, 'targeted_occlusion', 5, np.random.default_rng(0),
                    boxes=np.zeros((0, 4)))
    assert np.array_equal(out, img)


def test_ngrn_is_bounded_uniform_noise_and_gaussian_is_not():
    gray = np.full((200, 200, 3), 128, np.uint8)
    a = D.SEVERITY_TABLE['ngrn'].levels[0]
    diff = D.distort(gray, 'ngrn', 1, np.random.default_rng(0)).astype(float) - 128
    assert np.abs(diff).max() <= a and np.abs(diff).max() >= a - 1
    kurtosis = lambda x: np.mean((x - x.mean()) ** 4) / np.var(x) ** 2  # noqa: E731
    assert abs(kurtosis(diff) - 1.8) < 0.1   # uniform
    g = D.distort(gray, 'gaussian_noise', 1, np.random.default_rng(0)).astype(float) - 128
    assert abs(kurtosis(g) - 3.0) < 0.2      # Gaussian
    assert abs(g.std() - D.SEVERITY_TABLE['gaussian_noise'].levels[0]) < 0.5


def test_salt_pepper_fraction_and_values():
    gray = np.full((200, 200, 3), 128, np.uint8)
    for severity in (1, 5):
        out = D.distort(gray, 'salt_pepper', severity, np.random.default_rng(0))
        changed = np.any(out != 128, axis=2)
        assert abs(changed.mean() - D.SEVERITY_TABLE['salt_pepper'].levels[severity - 1]) < 0.01
        assert set(np.unique(out[changed])) == {0, 255}
        assert np.all(out[changed].min(axis=1) == out[changed].max(axis=1))  # whole pixel


def test_inpainting_fills_removed_regions_smoothly():
    img = natural_image()
    out = D.distort(img, 'inpainting', 5, np.random.default_rng(0))
    changed = np.any(out != img, axis=2)
    area = D.SEVERITY_TABLE['inpainting'].levels[4]
    assert 0.3 * area < changed.mean() < 1.2 * area
    # Filled pixels are interpolated from their surroundings: no salt/pepper-like extremes.
    assert np.abs(out[changed].astype(int) - img[changed]).mean() < 80


@pytest.mark.parametrize('bad', ['nope', 'Motion_Blur', None, 3])
def test_unknown_distortion_lists_choices(bad):
    with pytest.raises(ValueError, match='valid choices: motion_blur, jpeg'):
        D.distort(natural_image(), bad, 1, np.random.default_rng(0))


@pytest.mark.parametrize('bad', [0, 6, -1, 2.0, True, '3'])
def test_bad_severity_lists_choices(bad):
    with pytest.raises(ValueError, match='valid choices: 1, 2, 3, 4, 5'):
        D.distort(natural_image(), 'jpeg', bad, np.random.default_rng(0))


def test_bad_image_and_rng():
    img = natural_image()
    for bad in (img.astype(np.float32), img[..., 0], img[..., :2], img.tolist()):
        with pytest.raises(ValueError, match='uint8 HxWx3'):
            D.distort(bad, 'jpeg', 1, np.random.default_rng(0))
    with pytest.raises(TypeError, match='numpy.random.Generator'):
        D.distort(img, 'ngrn', 1, np.random.RandomState(0))
    assert D.check_severity(np.int64(4)) == 4


def test_common_corruptions_are_optional():
    with pytest.raises(ValueError, match='ic:fog'):
        D.check_distortion('ic:nope')
    try:
        import imagecorruptions  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='imagecorruptions'):
            D.distort(natural_image(), 'ic:fog', 1, np.random.default_rng(0))
        assert D.available_distortions() == D.DISTORTIONS + D.COMMON_CORRUPTIONS
    else:
        out = D.distort(natural_image(), 'ic:contrast', 3, np.random.default_rng(0))
        assert out.shape == natural_image().shape and out.dtype == np.uint8
        assert 'ic:fog' in D.available_distortions()
