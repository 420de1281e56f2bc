"""Shared fixtures: tiny generated data, so no test needs a download."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests run on 2-core CI machines: one intra-op thread per process keeps parallel
# helpers (dataloader workers, torchrun ranks) from oversubscribing the cores.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def synthetic_voc_root(tmp_path_factory) -> Path:
    """A tiny VOC-layout data set (``<root>/VOC2007/...``) shared by the whole session.

    Read-only for tests: a test that needs to change files makes its own copy.
    """
    from fq_det.datasets.synthetic_voc import make_synthetic_voc

    root = tmp_path_factory.mktemp('synthvoc')
    make_synthetic_voc(root, num_train=8, num_test=4, seed=0, image_size=(160, 120))
    return root
