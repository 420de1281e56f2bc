"""The built-in common corruptions (c:<name>): contract, determinism, severity, presets,
errors, and the deterministic ones against the reference's formulas written out here."""
from __future__ import annotations

import io

import numpy as np
import pytest

from fq_det.datasets import common_corruptions as C
from fq_det.datasets import distortions as D
from fq_det.evaluation.robustness import resolve_distortions
from test_distortions import natural_image, psnr

#: Corruptions whose PSNR does not fall with severity by the reference's own parameters:
#: glass_blur's iterations go 2, 1, 3, 2, 2; frost lowers the image weight at an equal
#: frost weight (0.7 -> 0.65 at 0.7); saturate desaturates (x0.3, x0.1), then saturates.
NOT_MONOTONE = {'glass_blur', 'frost', 'saturate'}


def test_names_table_and_presets():
    assert len(C.CORRUPTIONS) == 19
    assert C.BENCHMARK_CORRUPTIONS == (
        'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur',
        'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast',
        'elastic_transform', 'pixelate', 'jpeg_compression')
    assert C.BENCHMARK_CORRUPTIONS == D.IC_CORRUPTIONS  # the package's 15, same order
    assert C.EXTRA_CORRUPTIONS == ('speckle_noise', 'gaussian_blur', 'spatter', 'saturate')
    for spec in C.CORRUPTION_TABLE.values():
        assert len(spec.levels) == 5
    assert D.BENCHMARK == tuple('c:' + n for n in C.BENCHMARK_CORRUPTIONS)
    assert resolve_distortions('benchmark') == D.BENCHMARK
    assert resolve_distortions('benchmark-extra') == D.BENCHMARK_EXTRA
    assert resolve_distortions('paper') == D.DISTORTIONS == resolve_distortions('all')
    assert resolve_distortions(['benchmark', 'benchmark-extra']) == D.COMMON_CORRUPTIONS
    assert resolve_distortions(['paper', 'c:fog', 'jpeg']) == D.DISTORTIONS + ('c:fog', )
    assert resolve_distortions(['c:fog', 'jpeg']) == ('c:fog', 'jpeg')
    assert set(D.COMMON_CORRUPTIONS) <= set(D.available_distortions())
    assert not any(D.needs_boxes(n) for n in D.COMMON_CORRUPTIONS)
    # the prefix keeps the paper's distortions of the same name apart
    assert {'motion_blur', 'gaussian_noise'} <= set(D.DISTORTIONS) & set(C.CORRUPTIONS)


def test_docs_show_the_code_table(repo_root):
    assert C.corruption_table_markdown() in (repo_root / 'docs' / 'distortions.md').read_text()


@pytest.mark.parametrize('bad', ['c:nope', 'c:Fog', 'c:'])
def test_unknown_corruption_lists_choices(bad):
    with pytest.raises(ValueError, match='valid choices: c:gaussian_noise, c:shot_noise'):
        D.distort(natural_image(20, 30), bad, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match='c:saturate'):
        resolve_distortions([bad])


def test_unknown_name_lists_distortions_corruptions_and_presets():
    with pytest.raises(ValueError, match=r'motion_blur, jpeg.*c:fog.*preset: all, paper, '
                                         r'benchmark, benchmark-extra'):
        resolve_distortions('benchmarks')
    with pytest.raises(ValueError, match='valid choices: gaussian_noise, shot_noise'):
        C.corrupt(natural_image(20, 30), 'nope', 1, np.random.default_rng(0))


@pytest.mark.parametrize('name', C.CORRUPTIONS)
def test_contract_and_determinism(name):
    img = natural_image(45, 61)
    before = img.copy()
    spec = C.CORRUPTION_TABLE[name]
    for severity in D.SEVERITIES:
        a = D.distort(img, 'c:' + name, severity, np.random.default_rng(7))
        assert a.shape == img.shape and a.dtype == np.uint8 and a.flags.c_contiguous
        assert not np.array_equal(a, img)
        b = D.distort(img, 'c:' + name, severity, np.random.default_rng(7))
        assert a.tobytes() == b.tobytes()
        c = D.distort(img, 'c:' + name, severity, np.random.default_rng(8))
        assert (a.tobytes() != c.tobytes()) == spec.random
    assert np.array_equal(img, before)
    # the unchecked entry computes what the checked route does
    assert C.corrupt(img, name, 2, np.random.default_rng(3)).tobytes() == \
        D.distort(img, 'c:' + name, 2, np.random.default_rng(3)).tobytes()


@pytest.mark.parametrize('name', C.CORRUPTIONS)
def test_psnr_falls_with_severity(name):
    img = natural_image()
    values = [psnr(img, D.distort(img, 'c:' + name, s, np.random.default_rng(1)))
              for s in D.SEVERITIES]
    if name in NOT_MONOTONE:
        assert values[-1] < values[0], values
        return
    levels = C.CORRUPTION_TABLE[name].levels
    for (a, b), (la, lb) in zip(zip(values, values[1:]), zip(levels, levels[1:])):
        assert (a >= b) if la == lb else (a > b), values


def test_odd_sizes_and_tiny_images():
    for h, w in ((1, 1), (2, 3), (7, 1), (17, 9)):
        img = natural_image(h, w)
        for name in C.CORRUPTIONS:
            out = D.distort(img, 'c:' + name, 5, np.random.default_rng(0))
            assert out.shape == img.shape and out.dtype == np.uint8, name


def test_noise_statistics():
    grey = np.full((120, 120, 3), 128, np.uint8)
    rng = np.random.default_rng
    c = C.CORRUPTION_TABLE['gaussian_noise'].levels[0]
    g = D.distort(grey, 'c:gaussian_noise', 1, rng(0)).astype(float)
    assert abs(g.std() - 255 * c) < 0.5 and abs(g.mean() - 127.5) < 0.5  # truncation
    c = C.CORRUPTION_TABLE['impulse_noise'].levels[4]
    i = D.distort(grey, 'c:impulse_noise', 5, rng(0))
    assert abs((i != 128).mean() - c) < 0.01 and set(np.unique(i)) == {0, 128, 255}
    c = C.CORRUPTION_TABLE['shot_noise'].levels[2]
    s = D.distort(grey, 'c:shot_noise', 3, rng(0)).astype(float) / 255
    assert abs(s.var() * c ** 2 - c * 128 / 255) < 0.3  # Poisson: var = mean


# ---------------------------------------------- the deterministic ones, as the reference
def _rgb2hsv(rgb):
    """scikit-image's rgb2hsv, written out."""
    v = rgb.max(-1)
    delta = np.ptp(rgb, -1)
    with np.errstate(invalid='ignore', divide='ignore'):
        s = delta / v
        s[delta == 0.] = 0.
        h = np.zeros_like(v)
        for k, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
            idx = rgb[..., k] == v
            h[idx] = 2. * k + (rgb[idx, a] - rgb[idx, b]) / delta[idx]
    h = (h / 6.) % 1.
    h[delta == 0.] = 0.
    return np.stack([h, s, v], -1)


def _hsv2rgb(hsv):
    """scikit-image's hsv2rgb, written out."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    hi = np.stack([hi] * 3, -1).astype(np.uint8) % 6
    return np.choose(hi, np.stack([np.stack(c, -1) for c in (
        (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]))


def _reference(name: str, bgr: np.ndarray, c) -> np.ndarray:
    """imagecorruptions 1.1.2's formula on the RGB image, ``np.uint8(255 y)``, back to BGR."""
    from PIL import Image
    rgb = bgr[..., ::-1]
    x = rgb / 255.
    if name == 'contrast':
        means = np.mean(x, axis=(0, 1), keepdims=True)
        y = np.clip((x - means) * c + means, 0, 1) * 255
    elif name == 'brightness':
        hsv = _rgb2hsv(x)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        y = np.clip(_hsv2rgb(hsv), 0, 1) * 255
    elif name == 'saturate':
        hsv = _rgb2hsv(x)
        hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
        y = np.clip(_hsv2rgb(hsv), 0, 1) * 255
    elif name == 'pixelate':
        im = Image.fromarray(np.ascontiguousarray(rgb))
        w, h = im.size
        y = im.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.NEAREST)
    elif name == 'jpeg_compression':
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb)).save(buf, 'JPEG', quality=c)
        y = Image.open(buf)
    return np.uint8(np.asarray(y))[..., ::-1]


#: Largest difference allowed (grey levels) and share of values that may differ at all:
#: equal bytes, except JPEG, where OpenCV's libjpeg build meets Pillow's (equal bytes too
#: with the pinned opencv-python-headless and pillow; a little slack for other builds).
REFERENCE_TOLERANCE = {'contrast': (0, 0.0), 'brightness': (0, 0.0), 'saturate': (0, 0.0),
                       'pixelate': (0, 0.0), 'jpeg_compression': (2, 0.05)}


@pytest.mark.parametrize('name', sorted(REFERENCE_TOLERANCE))
def test_deterministic_ones_follow_the_reference(name):
    img = natural_image(37, 53, seed=4)
    img[:4, :4] = 0  # black, white and grey pixels: the HSV special cases
    img[:4, 4:8] = 255
    img[4:8, :8] = 100
    max_diff, share = REFERENCE_TOLERANCE[name]
    for severity in D.SEVERITIES:
        ours = D.distort(img, 'c:' + name, severity, np.random.default_rng(0)).astype(int)
        ref = _reference(name, img, C.CORRUPTION_TABLE[name].levels[severity - 1]).astype(int)
        diff = np.abs(ours - ref)
        assert diff.max() <= max_diff and (diff > 0).mean() <= share, \
            (severity, diff.max(), (diff > 0).mean())


def test_plasma_fractal_range_and_seed():
    a = C.plasma_fractal(64, 2.0, np.random.default_rng(0))
    assert a.shape == (64, 64) and a.min() == 0 and a.max() == 1
    assert np.array_equal(a, C.plasma_fractal(64, 2.0, np.random.default_rng(0)))
    with pytest.raises(ValueError, match='power of two'):
        C.plasma_fractal(48, 2.0, np.random.default_rng(0))


def test_the_one_route_and_the_transform_take_them():
    from fq_det.datasets.distortion_route import distort_image, distortion_rng, insert_distort
    from fq_det.datasets.transforms import Distort, RandomDistort
    img = natural_image(30, 40)
    a = distort_image(img, 'c:fog', 3, seed=0, key='1|a.jpg')
    rng = distortion_rng(0, '1|a.jpg', 'c:fog', 3)
    assert a.tobytes() == D.distort(img, 'c:fog', 3, rng).tobytes()
    out = Distort('c:fog', 3)(dict(img=img.copy(), img_id='1', img_path='x/a.jpg'))
    assert out['img'].tobytes() == a.tobytes() and out['distortion'] == ('c:fog', 3)
    pipeline = insert_distort([dict(type='LoadImageFromFile'), dict(type='Resize')], 'c:snow', 2)
    assert pipeline[1]['distortion'] == 'c:snow'
    assert RandomDistort(list(D.BENCHMARK)).distortions == D.BENCHMARK


def test_benchmark_tool_times_them_and_says_when_the_package_is_absent(repo_root, capsys):
    import importlib.util
    path = repo_root / 'tools' / 'benchmarks' / 'benchmark_distortions.py'
    spec = importlib.util.spec_from_file_location('benchmark_distortions', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = tool.main(['--size', '24', '18', '--repeats', '1', '--skip-distortions'])
    assert [r['corruption'] for r in rows] == list(D.COMMON_CORRUPTIONS)
    printed = capsys.readouterr().out
    assert '| c:zoom_blur |' in printed and 'severity 3' in printed
    try:
        import imagecorruptions  # noqa: F401
    except ImportError:
        assert 'imagecorruptions is not installed: its column is skipped' in printed


# ------------------------- the blurs, as the reference computes them (same draws where random)
def _shift(image, dx, dy):
    """The reference's ``shift``: roll by (dx, dy), the vacated border filled by the edge."""
    out = image
    if dx < 0:
        out = np.roll(out, image.shape[1] + dx, axis=1)
        out[:, dx:] = out[:, dx - 1:dx]
    elif dx > 0:
        out = np.roll(out, dx, axis=1)
        out[:, :dx] = out[:, dx:dx + 1]
    if dy < 0:
        out = np.roll(out, image.shape[0] + dy, axis=0)
        out[dy:] = out[dy - 1:dy]
    elif dy > 0:
        out = np.roll(out, dy, axis=0)
        out[:dy] = out[dy:dy + 1]
    return out


def _reference_blur(name: str, bgr: np.ndarray, c, severity: int) -> np.ndarray:
    """imagecorruptions 1.1.2's blurs written out (scipy for scikit-image's gaussian)."""
    import cv2
    from scipy.ndimage import gaussian_filter, zoom
    x = bgr / 255.
    if name == 'motion_blur':  # shift-and-add of a one-sided Gaussian at the angle drawn
        radius, sigma = c
        angle = np.random.default_rng(severity).uniform(-45, 45)
        return np.uint8(np.clip(_reference_motion_layer(bgr, radius, sigma, angle), 0, 255))
    if name == 'zoom_blur':
        x = x.astype(np.float32)
        factors = np.arange(1, c[0], c[1])
        out = np.zeros_like(x)
        for z in factors:
            h0, w0 = int(np.ceil(x.shape[0] / z)), int(np.ceil(x.shape[1] / z))
            t0, l0 = (x.shape[0] - h0) // 2, (x.shape[1] - w0) // 2
            out += zoom(x[t0:t0 + h0, l0:l0 + w0], (z, z, 1), order=1)[:x.shape[0], :x.shape[1]]
        y = (x + out) / (len(factors) + 1)
    elif name == 'gaussian_blur':
        y = gaussian_filter(x, sigma=(c, c, 0), mode='nearest', truncate=4.0)
    elif name == 'defocus_blur':
        radius, alias_blur = c
        t = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
        xx, yy = np.meshgrid(t, t)
        disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
        disk /= disk.sum()
        disk = cv2.GaussianBlur(disk, (3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)
        y = np.stack([cv2.filter2D(x[..., d], -1, disk) for d in range(3)], -1)
    return np.uint8(np.clip(y, 0, 1) * 255)


@pytest.mark.parametrize('name', ['motion_blur', 'zoom_blur', 'gaussian_blur', 'defocus_blur'])
def test_blurs_follow_the_reference(name):
    """Equal but for a grey level where a sum lands on an integer (flat regions: the
    summation order decides the truncation)."""
    img = natural_image(48, 64, seed=2)
    for severity in D.SEVERITIES:
        ours = D.distort(img, 'c:' + name, severity, np.random.default_rng(severity))
        ref = _reference_blur(name, img, C.CORRUPTION_TABLE[name].levels[severity - 1],
                              severity)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.3, (severity, diff.max(), diff.mean())


def _reference_glass_pass(x: np.ndarray, delta: int, d: np.ndarray) -> np.ndarray:
    """The reference's shuffle loop as it is written (on an RGB array: a copy, not a swap)."""
    x = x.copy()
    for i, h in enumerate(range(x.shape[0] - delta, delta, -1)):
        for j, w in enumerate(range(x.shape[1] - delta, delta, -1)):
            dx, dy = d[0, i, j], d[1, i, j]
            h_prime, w_prime = h + dy, w + dx
            x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return x


@pytest.mark.parametrize('delta', [1, 2, 3, 4])
def test_glass_blur_shuffle_is_the_reference_loop(delta):
    rng = np.random.default_rng(delta)
    for h, w in ((21, 34), (9, 9), (2 * delta + 1, 12), (4, 4)):
        x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        d = rng.integers(-delta, delta, size=(2, max(h - 2 * delta, 0), max(w - 2 * delta, 0)))
        sources = C._glass_sources(h, w, delta, d).reshape(-1)
        assert np.array_equal(x.reshape(-1, 3)[sources].reshape(x.shape),
                              _reference_glass_pass(x, delta, d)), (h, w)


# ----------------------------- random ones, as the reference computes them from the same draws
def _reference_motion_layer(layer, radius, sigma, angle):
    """The reference's ``_motion_blur``: shift-and-add of a one-sided Gaussian at ``angle``."""
    width = 2 * radius + 1
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    k /= k.sum()
    py, px = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    hyp = np.hypot(py, px)
    out = np.zeros(layer.shape, np.float32)
    for i in range(width):
        dy, dx = -int(np.ceil(i * py / hyp - 0.5)), -int(np.ceil(i * px / hyp - 0.5))
        if abs(dy) >= layer.shape[0] or abs(dx) >= layer.shape[1]:
            break
        out = out + k[i] * _shift(layer, dx, dy)
    return out


def _reference_random(name: str, bgr: np.ndarray, c, seed: int) -> np.ndarray:
    """imagecorruptions 1.1.2's snow, fog, spatter, elastic_transform written out, drawing from
    ``default_rng(seed)`` in the reference's order (scipy for scikit-image's gaussian)."""
    import cv2
    from scipy.ndimage import gaussian_filter, map_coordinates, zoom
    rng = np.random.default_rng(seed)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    h, w = rgb.shape[:2]
    if name == 'snow':
        x = np.array(rgb, dtype=np.float32) / 255.
        layer = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
        h0, w0 = int(np.ceil(h / c[2])), int(np.ceil(w / c[2]))
        t0, l0 = (h - h0) // 2, (w - w0) // 2
        layer = zoom(layer[t0:t0 + h0, l0:l0 + w0, None], (c[2], c[2], 1), order=1)
        layer[layer < c[3]] = 0
        layer = np.clip(layer.squeeze(), 0, 1)
        layer = _reference_motion_layer(layer, c[4], c[5], rng.uniform(-135, -45))
        layer = (np.round(layer * 255).astype(np.uint8) / 255.)[..., None][:h, :w]
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, w, 1)
        x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
        y = np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255
    elif name == 'fog':
        x = rgb / 255.
        size = 2 ** (int(max(rgb.shape)) - 1).bit_length()
        m = np.empty((size, size))
        m[0, 0] = 0
        step, wibble = size, 100.

        def wibbled(a):
            return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)
        while step >= 2:
            corners = m[0:size:step, 0:size:step]
            sq = corners + np.roll(corners, shift=-1, axis=0)
            sq += np.roll(sq, shift=-1, axis=1)
            m[step // 2:size:step, step // 2:size:step] = wibbled(sq)
            dr = m[step // 2:size:step, step // 2:size:step]
            ul = m[0:size:step, 0:size:step]
            m[0:size:step, step // 2:size:step] = wibbled(
                dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
            m[step // 2:size:step, 0:size:step] = wibbled(
                dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
            step //= 2
            wibble /= c[1]
        m -= m.min()
        m /= m.max()
        max_val = x.max()
        x = x + c[0] * m[:h, :w][..., None]
        y = np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255
    elif name == 'spatter':
        x = np.array(rgb, dtype=np.float32) / 255.
        liquid = gaussian_filter(rng.normal(size=x.shape[:2], loc=c[0], scale=c[1]), c[2],
                                 mode='nearest', truncate=4.0)
        liquid[liquid < c[3]] = 0
        if c[5] == 0:
            liquid = (liquid * 255).astype(np.uint8)
            dist = cv2.distanceTransform(255 - cv2.Canny(liquid, 50, 150), cv2.DIST_L2, 5)
            _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
            dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
            ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
            dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, ker), (3, 3)).astype(np.float32)
            m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
            m /= np.max(m, axis=(0, 1))
            m *= c[4]
            ones = np.ones_like(m[..., :1])
            color = np.concatenate((175 / 255. * ones, 238 / 255. * ones, 238 / 255. * ones), 2)
            color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
            x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
            y = cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255
        else:
            m = np.where(liquid > c[3], 1, 0)
            m = gaussian_filter(m.astype(np.float32), c[4], mode='nearest', truncate=4.0)
            m[m < 0.8] = 0
            ones = np.ones_like(x[..., :1])
            color = np.concatenate((63 / 255. * ones, 42 / 255. * ones, 20 / 255. * ones), 2)
            color *= m[..., None]
            x *= (1 - m[..., None])
            y = np.clip(x + color, 0, 1) * 255
    elif name == 'elastic_transform':
        image = np.array(rgb, dtype=np.float32) / 255.
        sigma, mx = np.array((h, w)) * 0.01, h * 0.005
        dx = (gaussian_filter(rng.uniform(-mx, mx, size=(h, w)), sigma, mode='reflect',
                              truncate=3) * c).astype(np.float32)
        dy = (gaussian_filter(rng.uniform(-mx, mx, size=(h, w)), sigma, mode='reflect',
                              truncate=3) * c).astype(np.float32)
        xx, yy, zz = np.meshgrid(np.arange(w), np.arange(h), np.arange(3))
        idx = (np.reshape(yy + dy[..., None], (-1, 1)), np.reshape(xx + dx[..., None], (-1, 1)),
               np.reshape(zz, (-1, 1)))
        y = np.clip(map_coordinates(image, idx, order=1, mode='reflect').reshape(image.shape),
                    0, 1) * 255
    return np.uint8(y)[..., ::-1]


@pytest.mark.parametrize('name', ['snow', 'fog', 'spatter', 'elastic_transform'])
def test_random_ones_follow_the_reference_for_the_same_draws(name):
    img = natural_image(40, 56, seed=3)
    for severity in D.SEVERITIES:
        ours = D.distort(img, 'c:' + name, severity, np.random.default_rng(severity))
        ref = _reference_random(name, img, C.CORRUPTION_TABLE[name].levels[severity - 1],
                                severity)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02, \
            (severity, diff.max(), (diff > 0).mean())


def test_contrast_table_gives_the_per_pixel_bytes_or_steps_aside():
    """The lookup table is used where its error bound proves it equal to the reference's
    per-pixel float64 operations, and a flat image (every value on a truncation edge)
    falls back to them."""
    rng = np.random.default_rng(1)
    images = [natural_image(int(w), int(h), seed=i) for i, (w, h) in
              enumerate(rng.integers(8, 120, (12, 2)))]
    images += [rng.integers(0, 256, (31, 17, 3), dtype=np.uint8) for _ in range(12)]
    taken = 0
    for img in images:
        for c in C.CORRUPTION_TABLE['contrast'].levels:
            taken += C._contrast_table(img, c) is not None
            assert np.array_equal(C._contrast(img, c, None), C._contrast_per_pixel(img, c))
    assert taken >= 0.9 * len(images) * 5
    flat = np.full((9, 11, 3), (10, 128, 250), np.uint8)
    assert C._contrast_table(flat, 0.2) is None
    assert np.array_equal(C._contrast(flat, 0.2, None), C._contrast_per_pixel(flat, 0.2))


@pytest.mark.parametrize('name', ['brightness', 'saturate'])
def test_hsv_corruptions_follow_the_reference_on_a_colour_cube(name):
    """Every colour of a 52^3 cube (each channel 0, 5, ..., 255): the planar HSV round trip
    gives scikit-image's bytes at every severity, ties between channels and greys included."""
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing='ij'), -1).reshape(52 * 52, 52, 3)
    for severity in D.SEVERITIES:
        c = C.CORRUPTION_TABLE[name].levels[severity - 1]
        ours = C.corrupt(cube, name, severity, np.random.default_rng(0))
        assert np.array_equal(ours, _reference(name, cube, c)), severity
