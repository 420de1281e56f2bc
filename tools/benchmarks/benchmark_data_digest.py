"""Time of the data content digest a study computes per run, with and without the
per-process cache (fq_det.datasets.content_digest).

    python tools/benchmarks/benchmark_data_digest.py --root DIR [--calls 50]
    python tools/benchmarks/benchmark_data_digest.py --num-images 3000 [--image-size 500 375]

A study's ``folder`` data key digests the trainval and test splits of a VOC-layout
folder (every annotation and image they name) each time it is asked: ``report`` and
``run`` ask once per run and stage, 50 times for 25 runs with a pretraining stage.
This makes ``--calls`` such requests twice: reading every file each time (the cache
cleared before each), then with the cache (the first call reads, the others only
stat the files), and prints the wall-clock time of each (the digest reads files, so
waiting on the disk counts) and their ratio. Without ``--root`` a synthetic set of
``--num-images`` images (half trainval, half test) is generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import os.path as osp
import tempfile
import time

SPLITS = ('trainval', 'test')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', help='a VOC-layout folder (<root>/VOC2007/...)')
    p.add_argument('--num-images', type=int, default=400, help='generated set (without --root)')
    p.add_argument('--image-size', type=int, nargs=2, default=(500, 375), metavar=('W', 'H'))
    p.add_argument('--calls', type=int, default=50, help='digest requests (both splits each)')
    return p.parse_args(argv)


def _digest_calls(root: str, calls: int, cached: bool) -> float:
    """Wall-clock seconds of ``calls`` digests of every split of ``root``."""
    from fq_det.datasets.content_digest import clear_digest_cache, voc_content_digest
    splits = [s for s in SPLITS if osp.isfile(osp.join(root, f'VOC2007/ImageSets/Main/{s}.txt'))]
    clear_digest_cache()
    start = time.perf_counter()
    for _ in range(calls):
        if not cached:
            clear_digest_cache()
        for split in splits:
            voc_content_digest(root, f'VOC2007/ImageSets/Main/{split}.txt', 'VOC2007/')
    return time.perf_counter() - start


def measure(root: str, calls: int) -> dict:
    """``{'read': s, 'cached': s, 'images': n, 'megabytes': mb}`` for ``calls`` requests."""
    import os
    from fq_det.datasets.content_digest import SETTLED_S
    images = os.listdir(osp.join(root, 'VOC2007', 'JPEGImages'))
    size = sum(os.path.getsize(osp.join(root, 'VOC2007', 'JPEGImages', f)) for f in images)
    newest = max(os.stat(osp.join(root, 'VOC2007', 'JPEGImages', f)).st_ctime for f in images)
    time.sleep(max(0.0, newest + SETTLED_S + 0.1 - time.time()))  # fresh files are not cached
    _digest_calls(root, 1, cached=False)  # the page cache warm for both measurements
    return dict(read=_digest_calls(root, calls, cached=False),
                cached=_digest_calls(root, calls, cached=True), images=len(images),
                megabytes=size / 1e6)


def main(argv=None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if not root:
            from fq_det.datasets.synthetic_voc import make_synthetic_voc
            root = tmp
            half = max(1, args.num_images // 2)
            make_synthetic_voc(root, num_train=half, num_test=half, seed=0,
                               image_size=tuple(args.image_size))
        result = measure(root, args.calls)
    print(f"{result['images']} images ({result['megabytes']:.0f} MB), {args.calls} digest "
          f"requests of {', '.join(SPLITS)}, wall clock, warm page cache")
    print('| digest | seconds | per request (ms) |\n|---|---:|---:|')
    for name in ('read', 'cached'):
        print(f"| {name} | {result[name]:.3f} | {1000 * result[name] / args.calls:.1f} |")
    print(f"cached / read: {result['cached'] / result['read']:.3f}")
    return result


if __name__ == '__main__':
    main()
