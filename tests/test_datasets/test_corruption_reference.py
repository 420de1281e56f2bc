"""The native common corruptions against imagecorruptions 1.1.2's statistics, stored in
tests/data/corruption_reference/ by tools/benchmarks/corruption_reference.py (the package
is not needed here): mean PSNR and SSIM to the clean photograph per severity, and equal
outputs for the corruptions without randomness."""
from __future__ import annotations

import hashlib
import json
import math

import cv2
import numpy as np
import pytest

from fq_det.analysis.image_quality import psnr, quality_statistics, ssim
from helpers import REPO, load_script

DATA = REPO / 'tests' / 'data' / 'corruption_reference'
TABLE = json.loads((DATA / 'reference.json').read_text())
PHOTOS = list(TABLE['provenance']['photos'])
IMAGES = [cv2.imread(str(DATA / f'{p}.png'), cv2.IMREAD_COLOR) for p in PHOTOS]
TOOL = load_script('tools/benchmarks/corruption_reference.py')
#: Tolerances of the comparison (issue: within 0.5 dB / 0.02 of the reference's means).
PSNR_TOL, SSIM_TOL = 0.5, 0.02
#: Corruptions that differ from the reference by design (docs/distortions.md): frost's
#: texture is procedural, not the package's photographs.
BY_DESIGN = {'frost'}


@pytest.fixture(scope='module')
def ours() -> dict:
    return {name: TOOL.native_statistics(name, IMAGES, TABLE['draws'][name])
            for name in TABLE['reference']}


def test_the_stored_photos_and_table_are_complete():
    assert PHOTOS == list(TOOL.PHOTOS) and all(img is not None for img in IMAGES)
    assert max(IMAGES[0].shape[:2]) == TABLE['provenance']['long_side']
    assert len(TABLE['reference']) == 19 and all(len(v) == 5 for v in TABLE['reference'].values())


@pytest.mark.parametrize('name', sorted(set(TOOL.DETERMINISTIC)))
def test_deterministic_corruptions_match_the_reference_outputs(name):
    """Where the reference's outputs were equal to ours when stored, ours still hash to
    them; where they were not, ours are within the stored difference (checked by PSNR)."""
    corrupt = TOOL.native_corrupt(name)
    for severity, rows in TABLE['deterministic'][name].items():
        for i, row in enumerate(rows):
            out = corrupt(IMAGES[i], i, int(severity), 0)
            if row['max_diff'] == 0:
                assert hashlib.sha256(out.tobytes()).hexdigest() == row['sha256'], \
                    (name, severity, row['photo'])
    ref = TABLE['reference'][name]
    for severity in range(1, 6):
        stats = quality_statistics(corrupt, IMAGES, [severity], 1)[severity]
        assert stats['psnr'] == pytest.approx(ref[str(severity)]['psnr'], abs=0.05)


@pytest.mark.parametrize('name', sorted(set(TABLE['reference']) - BY_DESIGN))
def test_mean_psnr_and_ssim_match_the_reference(name, ours):
    for severity, ref in TABLE['reference'][name].items():
        mine = ours[name][int(severity)]
        # enough draws to tell: the standard error of the difference is well inside the
        # tolerance (images are the same on both sides; only the draws vary)
        assert 2 * math.hypot(mine['psnr_se'], ref['psnr_se']) < PSNR_TOL
        assert 2 * math.hypot(mine['ssim_se'], ref['ssim_se']) < SSIM_TOL
        assert mine['psnr'] == pytest.approx(ref['psnr'], abs=PSNR_TOL), (name, severity)
        assert mine['ssim'] == pytest.approx(ref['ssim'], abs=SSIM_TOL), (name, severity)


def test_quality_measures():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf and ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    assert 25 < psnr(img, noisy) < 30 and ssim(img, noisy) < ssim(img, img)
    # channel order does not matter
    assert ssim(img, noisy) == pytest.approx(ssim(img[..., ::-1], noisy[..., ::-1]))
