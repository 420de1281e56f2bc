"""The compiled POW kernels (fq_det/models/quantizers/kernels.py) against the torch path."""
from __future__ import annotations

import pytest
import torch

from fq_det.models.quantizers import functional as F_q
from fq_det.models.quantizers import kernels

pytestmark = pytest.mark.skipif(kernels.pow_kernel() is None,
                                reason='no C compiler: the kernels are off, the torch path is tested')


@pytest.fixture
def torch_path(monkeypatch):
    """Run POW on the pure-torch path (the reference) for the duration of a ``with``."""

    class Switch:

        def __enter__(self):
            monkeypatch.setattr(kernels, '_lib', None)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return Switch()


def _run(x, p, w, k, g):
    xx, pp = x.clone().requires_grad_(), p.clone().requires_grad_()
    y = F_q.pow_quant(xx * 1, pp, w, k, relu=True, inplace=True)  # * 1: a non-leaf, like BN's output
    y.backward(g)
    return y.detach(), xx.grad, pp.grad


def _inputs(k: int, batch_exponents: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, 11, 13, generator=gen) * 2
    x.view(-1)[:40] = torch.tensor([0.0, -0.0, 1e-35, 1e-30, 1e-7, 1.0, 2.0, 3.0, 0.7, 1.4] * 4)
    x.view(-1)[40:44] = torch.tensor([1e4, 5e3, -1e4, 15.0])
    alpha = torch.empty(3 if batch_exponents else 1, 6, k).uniform_(-0.5, 1.5, generator=gen)
    alpha[0, 0] = -0.5  # the clamp limits
    alpha[0, 1] = 4.0
    return x, 1 + alpha, torch.randn(x.shape, generator=gen)


@pytest.mark.parametrize('k,w', [(1, 1.0), (1, 0.5), (2, 1.0), (16, 0.7)])
@pytest.mark.parametrize('batch_exponents', [False, True], ids=['POW', 'HPOW'])
def test_kernel_matches_torch_path(k, w, batch_exponents, torch_path):
    x, p, g = _inputs(k, batch_exponents)
    y, gx, gp = _run(x, p, w, k, g)
    with torch_path:
        y_ref, gx_ref, gp_ref = _run(x, p, w, k, g)
    for got, ref in ((y, y_ref), (gx, gx_ref), (gp, gp_ref)):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert (y[x <= 0] == 0).all() and (y[x >= w] > 0).all()  # the ReLU, exactly
    assert torch.equal(gx[x <= 0], torch.zeros_like(gx[x <= 0]))  # the ReLU's mask


def test_kernel_threads_split_rows_with_the_same_result():
    x, p, g = _inputs(4, False, seed=1)
    x = x.repeat(1, 1, 40, 40)  # large enough to be split
    g = g.repeat(1, 1, 40, 40)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _run(x, p, 1.0, 4, g)
        torch.set_num_threads(2)
        two = _run(x, p, 1.0, 4, g)
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    torch.testing.assert_close(one[2], two[2])


def test_kernel_not_used_where_it_does_not_apply(monkeypatch):
    calls = []
    monkeypatch.setattr(F_q, '_run_rows', lambda *a: calls.append(a))
    x, p, g = _inputs(2, False)
    F_q.pow_quant(x.double(), p.double(), 1.0, 2, relu=True)  # float64: torch path
    F_q.pow_quant(x, p, 1.0, 2, relu=False)  # odd-symmetric POW: torch path
    F_q.pow_quant(x, p, torch.tensor(1.0), 2, relu=True)  # learnable width: torch path
    F_q.pow_quant(x, torch.ones_like(p), 1.0, 2, relu=True)  # identity fast path
    assert not calls
    F_q.pow_quant(x, p, 1.0, 2, relu=True)
    assert len(calls) == 1


def test_switch_off_and_missing_compiler(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, '_tried', False)
    monkeypatch.setattr(kernels, '_lib', None)
    monkeypatch.setenv('FQ_DET_KERNELS', '0')
    assert kernels.pow_kernel() is None
    monkeypatch.setattr(kernels, '_tried', False)
    monkeypatch.setenv('FQ_DET_KERNELS', '1')
    monkeypatch.setenv('FQ_DET_CACHE', str(tmp_path))
    monkeypatch.setenv('CC', str(tmp_path / 'no-such-compiler'))
    assert kernels.pow_kernel() is None  # falls back, never raises
    monkeypatch.setattr(kernels, '_tried', False)
    monkeypatch.delenv('CC')
    assert kernels.pow_kernel() is not None  # builds into the fresh cache
    assert list((tmp_path / 'kernels').glob('pow_kernel-*.so'))


@pytest.mark.parametrize('k', [1, 3])
def test_nan_input_stays_nan(k, torch_path):
    x = torch.rand(1, 2, 4, 4) + 0.5
    x[0, 0, 1, 2] = float('nan')
    p = torch.full((1, 2, k), 1.3)
    y = F_q.pow_quant(x, p, 1.0, k, relu=True)
    with torch_path:
        y_ref = F_q.pow_quant(x, p, 1.0, k, relu=True)
    assert torch.isnan(y[0, 0, 1, 2]) and torch.isnan(y_ref[0, 0, 1, 2])
    assert torch.isfinite(y).sum() == y.numel() - 1
