"""Reference statistics of the 19 common corruptions: imagecorruptions next to ours.

    python tools/benchmarks/corruption_reference.py --out tests/data/corruption_reference \\
        [--draws 4] [--long-side 256]

Needs ``imagecorruptions`` (1.1.2, through ``fq_det.datasets.distortions.import_imagecorruptions``,
which adds its two shims for numpy 2 / scikit-image >= 0.19) and ``scikit-image`` (its sample
photographs ``astronaut``, ``chelsea``, ``coffee``, ``rocket``). Writes into ``--out``:

* ``<photo>.png``: the photographs, long side ``--long-side`` (OpenCV ``INTER_AREA``), BGR
  PNG: the inputs of both sides, and of ``tests/test_datasets/test_corruption_reference.py``;
* ``reference.json``: per corruption and severity the reference's mean PSNR and SSIM to
  the clean photo over photos x draws (``draws`` per corruption) with their standard errors from the draws
  (``fq_det.analysis.image_quality``); for the corruptions without randomness also, per
  photo, the sha256 of the reference's output and how far ours is from it (largest
  difference, share of differing values), measured here with both present.

Then prints the comparison table (Markdown): ours next to the reference's.
Reference draw ``k`` of photo ``i`` seeds numpy's global generator with ``1000 i + k``
(``impulse_noise`` draws from scikit-image's own, unseeded generator); ours is draw
``seed=k`` of the one distortion route.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime, timezone

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket')
#: The corruptions without randomness (equal outputs expected).
DETERMINISTIC = ('defocus_blur', 'zoom_blur', 'brightness', 'contrast', 'pixelate',
                 'jpeg_compression', 'gaussian_blur', 'saturate')
#: More draws (per severity) where one draw varies much (fog's fractal, spatter's few
#: drops at severity 1), so that the standard error of a difference of means stays well
#: inside 0.5 dB.
EXTRA_DRAWS = {'fog': {s: 16 for s in range(1, 6)}, 'spatter': {1: 160, 2: 16}}
PROVENANCE = {
    'astronaut': 'scikit-image data.astronaut(): Eileen Collins, NASA Great Images database; '
                 'public domain',
    'chelsea': 'scikit-image data.chelsea(): Chelsea the cat; CC0 by Stefan van der Walt',
    'coffee': 'scikit-image data.coffee(): coffee cup, courtesy of Pikolo Espresso Bar; CC0 by '
              'Rachel Michetti',
    'rocket': 'scikit-image data.rocket(): DSCOVR launch on Falcon 9, SpaceX; public domain',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='folder for the photos and reference.json')
    parser.add_argument('--draws', type=int, default=4,
                        help=f'random draws per photo (more for {", ".join(EXTRA_DRAWS)})')
    parser.add_argument('--long-side', type=int, default=256, help='photo size (long side, px)')
    parser.add_argument('--only', nargs='+', metavar='NAME',
                        help='recompute these corruptions in an existing reference.json')
    return parser.parse_args(argv)


def write_photos(out: str, long_side: int) -> list:
    """The sample photographs, resized, as BGR PNG files; read back (the inputs)."""
    import cv2
    from skimage import data
    images = []
    for name in PHOTOS:
        rgb = getattr(data, name)()
        scale = long_side / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        path = os.path.join(out, f'{name}.png')
        cv2.imwrite(path, small[..., ::-1])
        images.append(cv2.imread(path, cv2.IMREAD_COLOR))
    return images


def reference_corrupt(ic, name: str):
    import numpy as np

    def corrupt(bgr, i, severity, draw):
        np.random.seed(1000 * i + draw)
        rgb = ic.corrupt(np.ascontiguousarray(bgr[..., ::-1]), severity=severity,
                         corruption_name=name)
        return np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])
    return corrupt


def native_corrupt(name: str):
    from fq_det.datasets.distortion_route import distort_image, file_image_key

    def corrupt(bgr, i, severity, draw):
        return distort_image(bgr, 'c:' + name, severity, draw, file_image_key(f'{PHOTOS[i]}.png'))
    return corrupt


def deterministic_comparison(ic, name: str, images) -> dict:
    """Per severity and photo: sha256 of the reference's output, and ours against it."""
    import numpy as np
    ref, ours = reference_corrupt(ic, name), native_corrupt(name)
    out = {}
    for severity in range(1, 6):
        rows = []
        for i, image in enumerate(images):
            a, b = ref(image, i, severity, 0), ours(image, i, severity, 0)
            diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
            rows.append(dict(photo=PHOTOS[i], sha256=hashlib.sha256(a.tobytes()).hexdigest(),
                             max_diff=int(diff.max()), differing=float((diff > 0).mean())))
        out[str(severity)] = rows
    return out


def draws_of(name: str, base: int) -> dict[str, int]:
    """Draws per photo for each severity of ``name``."""
    return {str(s): max(base, EXTRA_DRAWS.get(name, {}).get(s, 0)) for s in range(1, 6)}


def native_statistics(name: str, images, draws: dict[str, int]) -> dict[int, dict]:
    """Our mean PSNR and SSIM per severity, with the table's draws."""
    from fq_det.analysis.image_quality import quality_statistics
    return {int(s): quality_statistics(native_corrupt(name), images, [int(s)], n)[int(s)]
            for s, n in draws.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import imagecorruptions  # noqa: F401  (fails early when it is absent)
    import skimage

    from fq_det.analysis.image_quality import quality_statistics
    from fq_det.datasets.common_corruptions import CORRUPTIONS
    from fq_det.datasets.distortions import import_imagecorruptions
    ic = import_imagecorruptions()
    os.makedirs(args.out, exist_ok=True)
    images = write_photos(args.out, args.long_side)
    old = None
    if args.only:
        with open(os.path.join(args.out, 'reference.json')) as f:
            old = json.load(f)
    table = dict(
        provenance=dict(package=f'imagecorruptions {getattr(ic, "__version__", "1.1.2")} '
                        '(with fq_det.datasets.distortions.import_imagecorruptions\' shims)',
                        scikit_image=skimage.__version__, photos=PROVENANCE,
                        long_side=args.long_side, draws=args.draws,
                        written=datetime.now(timezone.utc).strftime('%Y-%m-%d'),
                        command='python tools/benchmarks/corruption_reference.py '
                        + ' '.join(argv if argv is not None else sys.argv[1:])),
        draws={}, reference={}, deterministic={})
    for name in CORRUPTIONS:
        if old is not None and name not in args.only:
            for part in ('draws', 'reference', 'deterministic'):
                if name in old[part]:
                    table[part][name] = old[part][name]
            continue
        print(f'{name} ...', flush=True)
        draws = table['draws'][name] = draws_of(name, args.draws)
        table['reference'][name] = {s: quality_statistics(
            reference_corrupt(ic, name), images, [int(s)], n)[int(s)] for s, n in draws.items()}
        if name in DETERMINISTIC:
            table['deterministic'][name] = deterministic_comparison(ic, name, images)
    with open(os.path.join(args.out, 'reference.json'), 'w') as f:
        json.dump(table, f, indent=1)
    print(comparison_markdown(table, images))
    return table


def _draws_text(draws: dict[str, int]) -> str:
    values = sorted(set(draws.values()))
    return str(values[0]) if len(values) == 1 else \
        ', '.join(f'{n} (sev. {s})' for s, n in draws.items())


def _outputs(rows: list | None) -> str:
    if rows is None:
        return 'random'
    if all(r['max_diff'] == 0 for r in rows):
        return 'equal'
    return (f'max diff {max(r["max_diff"] for r in rows)} on '
            f'{100 * max(r["differing"] for r in rows):.2g} % of values')


def comparison_markdown(table: dict, images) -> str:
    """Two tables, ours / the reference's per severity: mean PSNR (dB), then mean SSIM."""
    ours = {name: native_statistics(name, images, table['draws'][name])
            for name in table['reference']}
    out = []
    for key, fmt in (('psnr', '.2f'), ('ssim', '.3f')):
        out += [f'| corruption ({key.upper()}: ours / ref.) | '
                + ' | '.join(f'sev. {s}' for s in range(1, 6)) + ' | draws | outputs |',
                '|---|' + '---:|' * 6 + '---|']
        for name, by_sev in table['reference'].items():
            cells = [f'{ours[name][int(s)][key]:{fmt}} / {ref[key]:{fmt}}'
                     for s, ref in by_sev.items()]
            det = table['deterministic'].get(name)
            outputs = _outputs(None if det is None else [r for v in det.values() for r in v])
            out.append(f'| c:{name} | ' + ' | '.join(cells)
                       + f' | {len(images)} x {_draws_text(table["draws"][name])} | {outputs} |')
        out.append('')
    return '\n'.join(out)


if __name__ == '__main__':  # pragma: no cover
    main(sys.argv[1:])
