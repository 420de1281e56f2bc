"""Milliseconds per image for every distortion, next to imagecorruptions' counterpart.

    python tools/benchmarks/benchmark_distortions.py [--size 500 375] [--severity 5]
                                                     [--corruption-severity 3]
                                                     [--repeats 30] [--threads 1]

Two tables: this project's distortions at ``--severity`` (speed targets and the
package's closest counterpart), then the 19 built-in common corruptions ``c:<name>`` at
``--corruption-severity`` next to the same corruption of the ``imagecorruptions``
package (that column is skipped, with a line saying so, when the package is absent;
a corruption the installed package fails on is marked ``fails``).

Measured on one thread (OpenCV and numpy's BLAS limited to ``--threads``), median
over ``--repeats`` runs on a generated natural-looking image, all in one process.
``--clock cpu`` (default) counts the process's CPU time, which other jobs on a shared
machine barely disturb; ``--clock wall`` counts elapsed time.
The common-corruption package (``imagecorruptions``) is timed on the same image at
the same severity when importable (through
``fq_det.datasets.distortions.import_imagecorruptions``, whose two shims let 1.1.2's
``fog`` and ``glass_blur`` run with numpy 2 and scikit-image >= 0.19); otherwise its
column says 'not installed'.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # numpy is imported after the thread limits are set
    import numpy as np

# Distortion -> (imagecorruptions' counterpart, speed target in ms).
TARGETS_MS = {'motion_blur': 20, 'jpeg': 20, 'salt_pepper': 20, 'ngrn': 20,
              'gaussian_noise': 20, 'inpainting': 60, 'targeted_occlusion': 60}
COUNTERPARTS = {'motion_blur': 'motion_blur', 'jpeg': 'jpeg_compression',
                'salt_pepper': 'impulse_noise', 'gaussian_noise': 'gaussian_noise'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time every distortion per image.')
    parser.add_argument('--size', type=int, nargs=2, default=(500, 375), metavar=('W', 'H'))
    parser.add_argument('--severity', type=int, default=5)
    parser.add_argument('--corruption-severity', type=int, default=3,
                        help='severity of the common-corruption table (default 3)')
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--corruption-repeats', type=int, default=None,
                        help='repeats of the common-corruption table (default: --repeats)')
    parser.add_argument('--skip-distortions', action='store_true',
                        help="time only the common corruptions, not the project's distortions")
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--clock', choices=['cpu', 'wall'], default='cpu',
                        help='process CPU time (robust on a shared machine) or wall time')
    return parser.parse_args(argv)


def natural_image(w: int, h: int, seed: int = 0):
    """Smooth shading, band-limited texture and a few flat objects (uint8 BGR)."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 50 * np.sin(xx / 23 + c) * np.cos(yy / 31 - c)
                    + 25 * np.sin((xx + yy) / 11.0) for c in range(3)], axis=2)
    img += cv2.GaussianBlur(rng.normal(0, 40, (h, w, 3)).astype(np.float32), (0, 0), 2.5)
    cv2.rectangle(img, (w // 10, h // 6), (w // 2, h // 2), (30, 200, 90), -1)
    cv2.circle(img, (2 * w // 3, 2 * h // 3), h // 5, (220, 40, 40), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def median_ms(fn, repeats: int, clock=time.process_time) -> float:
    fn()  # warm-up (first-call allocations, lazy imports)
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append((clock() - t) * 1000)
    return sorted(times)[len(times) // 2]


def main(argv=None) -> list[dict]:
    """Time the distortions and the common corruptions, print both tables, return their rows."""
    args = parse_args(argv)
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
        os.environ[var] = str(args.threads)
    import cv2
    import numpy as np

    from fq_det.datasets.distortions import check_severity
    cv2.setNumThreads(args.threads)
    severity = check_severity(args.severity)
    w, h = args.size
    img = natural_image(w, h)
    imagecorruptions = load_imagecorruptions()
    rgb = np.ascontiguousarray(img[..., ::-1])

    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    rows = [] if args.skip_distortions else time_distortions(img, rgb, severity, args.repeats,
                                                             clock, imagecorruptions)
    ic_state = 'not installed' if imagecorruptions is None else \
        getattr(imagecorruptions, '__version__', 'installed')
    if rows:
        print(f'{w}x{h} image, severity {severity}, {args.threads} thread(s), {args.clock} '
              f'time, median of {args.repeats}; imagecorruptions: {ic_state}')
    print_distortion_table(rows)

    # the built-in common corruptions, next to the package's own
    c_severity = check_severity(args.corruption_severity)
    repeats = args.corruption_repeats or args.repeats
    crows = time_common_corruptions(img, rgb, c_severity, repeats, clock, imagecorruptions)
    if rows:
        print()
    print(f'{w}x{h} image, severity {c_severity}, {args.threads} thread(s), {args.clock} time, '
          f'median of {repeats}; imagecorruptions: {ic_state}')
    print_corruption_table(crows, imagecorruptions is not None)
    return rows + crows


def load_imagecorruptions() -> ModuleType | None:
    """The ``imagecorruptions`` package with its shims for numpy 2 / scikit-image >= 0.19
    (fog, glass_blur), or ``None`` when it is not installed."""
    try:
        from fq_det.datasets.distortions import import_imagecorruptions
        return import_imagecorruptions()
    except ImportError:
        return None


def sample_boxes(w: int, h: int) -> np.ndarray:
    """Three boxes ``(3, 4)`` xyxy on a ``w x h`` image, for the distortions that need boxes."""
    import numpy as np
    return np.array([[0.1 * w, 0.15 * h, 0.5 * w, 0.55 * h], [0.5 * w, 0.4 * h, 0.9 * w, 0.9 * h],
                     [0.3 * w, 0.1 * h, 0.45 * w, 0.3 * h]])


def time_distortions(img: np.ndarray, rgb: np.ndarray, severity: int, repeats: int,
                     clock: Callable[[], float], imagecorruptions: ModuleType | None) -> list[dict]:
    """Per distortion: its median ms, its target, the package counterpart's ms and whether
    it meets both (``img`` BGR, ``rgb`` the same image as the package takes it)."""
    import numpy as np

    from fq_det.datasets.distortions import DISTORTIONS, distort
    h, w = img.shape[:2]
    boxes = sample_boxes(w, h)
    rows = []
    for name in DISTORTIONS:
        rng = np.random.default_rng(0)
        ms = median_ms(lambda: distort(img, name, severity, rng, boxes=boxes), repeats, clock)
        other, other_ms = COUNTERPARTS.get(name), None
        if other and imagecorruptions is not None:
            other_ms = median_ms(lambda: imagecorruptions.corrupt(
                rgb, severity=severity, corruption_name=other), repeats, clock)
        ok = ms <= TARGETS_MS[name] and (other_ms is None or ms <= other_ms)
        rows.append(dict(distortion=name, ms=ms, target_ms=TARGETS_MS[name], counterpart=other,
                         counterpart_ms=other_ms, ok=ok))
    return rows


def print_distortion_table(rows: list[dict]) -> None:
    """The distortions' markdown table (nothing when ``rows`` is empty)."""
    if rows:
        print('| distortion | fq_det ms | target ms | imagecorruptions counterpart | its ms | ok |')
        print('|---|---:|---:|---|---:|---|')
    for r in rows:
        other, other_ms = r['counterpart'] or '-', '-'
        if r['counterpart'] is not None:
            other_ms = 'not installed' if r['counterpart_ms'] is None else \
                f'{r["counterpart_ms"]:.1f}'
        print(f'| {r["distortion"]} | {r["ms"]:.1f} | {r["target_ms"]} | {other} | {other_ms} | '
              f'{"yes" if r["ok"] else "NO"} |')


def time_common_corruptions(img: np.ndarray, rgb: np.ndarray, severity: int, repeats: int,
                            clock: Callable[[], float],
                            imagecorruptions: ModuleType | None) -> list[dict]:
    """Per built-in common corruption: its median ms and the package's (a number, ``None``
    without the package, or ``'fails (<error>)'``)."""
    import numpy as np

    from fq_det.datasets.distortions import C_PREFIX, COMMON_CORRUPTIONS, distort
    crows = []
    for name in COMMON_CORRUPTIONS:
        rng = np.random.default_rng(0)
        ms = median_ms(lambda: distort(img, name, severity, rng), repeats, clock)
        ic_ms = None
        if imagecorruptions is not None:
            bare = name[len(C_PREFIX):]
            try:
                ic_ms = median_ms(lambda: imagecorruptions.corrupt(
                    rgb, severity=severity, corruption_name=bare), repeats, clock)
            except Exception as err:  # noqa: BLE001 - 1.1.2 fails on some with numpy 2
                ic_ms = f'fails ({type(err).__name__})'
        crows.append(dict(corruption=name, ms=ms, imagecorruptions_ms=ic_ms))
    return crows


def print_corruption_table(crows: list[dict], with_package: bool) -> None:
    """The common corruptions' markdown table, with the package's column ``with_package``."""
    if not with_package:
        print('imagecorruptions is not installed: its column is skipped '
              '(pip install --no-deps imagecorruptions scikit-image to fill it)')
        print('| corruption | fq_det ms |')
        print('|---|---:|')
    else:
        print('| corruption | fq_det ms | imagecorruptions ms | speed-up |')
        print('|---|---:|---:|---:|')
    for r in crows:
        line = f'| {r["corruption"]} | {r["ms"]:.1f} |'
        if with_package:
            other = r['imagecorruptions_ms']
            ratio = other / max(r['ms'], 1e-9) if isinstance(other, float) else None
            line += (f' {other:.1f} | {ratio:.{0 if ratio >= 10 else 1}f}x |'
                     if ratio is not None else f' {other} | - |')
        print(line)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
