"""The two readings of POW's exponent (``exponent='offset'``: p = 1 + alpha, ``'direct'``:
p = alpha), POW in place of the ReLU, HPOW from (mean, std), SF-POW, and the reading kept
with the weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from quantizer_reference import pow_reference

from fq_det.analysis import extract_exponents
from fq_det.models import (HPOW, POW, SF, SFPOW, ResNetPOW, alpha_penalty, build_quant_activation,
                           pow_quant)
from fq_det.models.quantizers import ExponentReadingError, kernels

X = torch.tensor([[[-3.0, -1.5, -0.2, 0.0, 1e-8, 0.3, 0.999, 1.0, 1.7, 2.5, 4.0, 40.0]]])


@pytest.mark.parametrize('relu', [False, True])
@pytest.mark.parametrize('k', [1, 4])
def test_direct_reading_is_the_identity_at_init_bit_exact(k, relu):
    x = torch.randn(2, 3, 5, 7) * 3
    layer = POW(3, num_splits=k, exponent='direct', with_relu=relu)
    assert torch.equal(layer.alpha, torch.ones_like(layer.alpha))
    assert torch.equal(layer.exponents(), torch.ones(1, 3, k))
    assert torch.equal(layer(x.clone()), x.clamp(min=0) if relu else x)
    hpow = HPOW(3, num_splits=k, reduction=1, exponent='direct', statistics='mean_std',
                with_relu=relu)
    assert torch.equal(hpow(x.clone()), x.clamp(min=0) if relu else x)
    assert torch.equal(hpow.last_alpha, torch.ones_like(hpow.last_alpha))


@pytest.mark.parametrize('k,w', [(1, 1.0), (3, 1.0), (4, 0.5)])
def test_direct_exponent_two_matches_the_closed_form(k, w):
    layer = POW(1, num_splits=k, split_width=w, exponent='direct')
    with torch.no_grad():
        layer.alpha.fill_(2.0)
    x = X.double()
    a = x.abs() / w
    j = a.floor().clamp(max=k - 1)
    expected = torch.sign(x) * w * (j + (a - j) ** 2)
    torch.testing.assert_close(layer.double()(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('k', [1, 3])
def test_small_exponents_approach_the_staircase_levels(k):
    """p -> 0: every value of segment j (above its breakpoint) moves toward b_j + w."""
    j = torch.arange(k, dtype=torch.float64).repeat_interleave(100).view(1, 1, -1)
    x = j + torch.linspace(0.02, 0.98, 100, dtype=torch.float64).repeat(k).view(1, 1, -1)
    gaps = []
    for p in (1.0, 0.5, 0.1, 0.01):
        layer = POW(1, num_splits=k, exponent='direct').double()
        with torch.no_grad():
            layer.alpha.fill_(p)
        gaps.append((j + 1 - layer(x)).abs().max().item())
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1 - 0.02 ** 0.01 + 1e-12
    # k = 1 at the clamp floor: sign(x) for every |x| >= 1e-3, within 7 %
    layer = POW(1, exponent='direct')
    with torch.no_grad():
        layer.alpha.fill_(-5.0)  # clamped to p = 0.01
    y = layer(X)
    big = X.abs() >= 1e-3
    assert (torch.sign(y) == torch.sign(X))[big].all()
    assert ((y.abs() - 1).abs()[big & (X.abs() <= 1)] < 0.07).all()
    torch.testing.assert_close(y.abs()[big & (X.abs() <= 1)],
                               X.abs()[big & (X.abs() <= 1)] ** 0.01)


def _away_from_breakpoints(shape, k, dtype=torch.float64):
    seg = torch.randint(0, k + 1, shape).to(dtype)
    frac = 0.15 + 0.7 * torch.rand(shape, dtype=dtype)
    sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0).to(dtype)
    return sign * (seg + frac)


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('relu', [False, True])
@pytest.mark.parametrize('p_range', [(0.02, 0.2), (0.2, 1.0), (1.0, 4.5)])
def test_direct_range_gradcheck(k, relu, p_range):
    torch.manual_seed(0)
    x = _away_from_breakpoints((2, 3, 3, 2), k).requires_grad_()
    lo, hi = p_range
    p = (lo + (hi - lo) * torch.rand(1, 3, k, dtype=torch.float64)).requires_grad_()
    width = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: pow_quant(a, b, c, k, relu=relu),
                                    (x, p, width))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('k', [1, 4])
@pytest.mark.parametrize('relu', [False, True])
def test_gradients_finite_for_exponents_near_zero(dtype, k, relu):
    """x = 0, tiny x, breakpoints, huge x, at p = 0.01: finite x, p and width gradients."""
    edge = torch.tensor([0.0, -0.0, 1e-30, 1e-12, 1e-6, 1.0, 2.0, 3.0, 1 - 1e-7, 1e4, -1e4, -1.0],
                        dtype=dtype).view(1, 1, -1).repeat(2, 2, 1)
    x = edge.clone().requires_grad_()
    p = torch.full((1, 2, k), 0.01, dtype=dtype, requires_grad=True)
    width = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    y = pow_quant(x * 1, p, width, k, relu=relu)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    for g in (x.grad, p.grad, width.grad):
        assert torch.isfinite(g).all()
    # the documented bound of dy/dx: p * T_MIN**(p - 1) = 8.7e3 at p = 0.01 (1e-3 slack)
    assert (x.grad.abs() <= upstream.abs() * 0.01 * 1e-6 ** -0.99 * (1 + 1e-3)).all()


@pytest.mark.skipif(kernels.pow_kernel() is None, reason='no C compiler: no kernels to compare')
@pytest.mark.parametrize('k', [1, 2, 16])
@pytest.mark.parametrize('per_sample', [False, True], ids=['POW', 'HPOW'])
def test_kernel_matches_torch_path_on_the_direct_range(k, per_sample, monkeypatch):
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(3, 6, 9, 11, generator=gen) * 2
    x.view(-1)[:12] = torch.tensor([0.0, -0.0, 1e-30, 1e-7, 1.0, 2.0, 0.5, 1e4, 3.0, 1e-3,
                                    0.999, 15.0])
    p = torch.empty(3 if per_sample else 1, 6, k).uniform_(0.01, 1.2, generator=gen)
    p[0, 0], p[0, 1] = 0.01, 5.0  # the default clamp limits
    g = torch.randn(x.shape, generator=gen)

    def run():
        xx, pp = x.clone().requires_grad_(), p.clone().requires_grad_()
        y = pow_quant(xx * 1, pp, 1.0, k, relu=True, inplace=True)
        y.backward(g)
        return y.detach(), xx.grad, pp.grad

    got = run()
    monkeypatch.setattr(kernels, '_lib', None)
    ref = run()
    for a, b in zip(got, ref):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4 * b.abs().max().item())


@pytest.mark.parametrize('reg', ['L1', 'L2'])
@pytest.mark.parametrize('exponent,start', [('direct', 1.0), ('offset', 0.5)])
def test_penalty_alone_moves_the_parameter_toward_zero(reg, exponent, start):
    """Zero task loss: the direct reading's p falls toward 0 (quantization), the offset
    reading's alpha toward 0 (the identity)."""
    layer = POW(4, exponent=exponent, alpha_reg=dict(type=reg, weight=0.1), with_relu=True)
    layer._alpha_reg_handled = True
    with torch.no_grad():
        layer.alpha.fill_(start)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.rand(2, 4, 3, 3)
    for _ in range(5):
        opt.zero_grad()
        loss = 0 * layer(x.clone()).sum() + alpha_penalty(layer)
        loss.backward()
        opt.step()
    assert (layer.alpha < start).all() and (layer.alpha >= 0).all()
    p = layer.exponents()
    assert ((p < 1.0) if exponent == 'direct' else (p < 1.5)).all()


def test_replace_relu_keeps_negative_values_with_their_sign():
    act = build_quant_activation(dict(type='POW', exponent='direct'), 3, 'replace_relu')
    assert not act.with_relu
    with torch.no_grad():
        act.alpha.fill_(0.5)
    x = torch.tensor([-4.0, -0.25, 0.0, 0.25, 4.0]).view(1, 1, -1).repeat(1, 3, 1)
    torch.testing.assert_close(act(x.clone()), torch.sign(x) * x.abs().sqrt())
    backbone = ResNetPOW(depth=18, base_channels=8, num_stages=2, strides=(1, 2),
                         dilations=(1, 1), out_indices=(1, ), quant_position='replace_relu',
                         stage_with_quant=(False, True), quant_cfg=dict(exponent='direct'))
    acts = [m for n, m in backbone.named_modules() if n.endswith(('act1', 'act2'))]
    assert acts and all(isinstance(m, POW) and not m.with_relu for m in acts)
    out = backbone(torch.randn(2, 3, 32, 32))[0]
    assert (out < 0).any()  # no ReLU after the last quantized block


def test_hpow_from_mean_and_std():
    layer = HPOW(4, reduction=2, exponent='direct', statistics='mean_std', with_relu=True)
    assert layer.reduce_weight.shape == (2, 8)
    x = torch.randn(2, 4, 5, 5).requires_grad_()
    y = layer(x * 1)
    assert torch.equal(y, x.detach().clamp(min=0))  # the identity at initialisation
    y.sum().backward()
    assert torch.equal(x.grad, (x > 0).float())
    # the branch learns from both statistics: the expand layer's gradient is non-zero
    with torch.no_grad():
        layer.expand_weight.normal_(0, 0.3)
    layer.zero_grad()
    out = layer(torch.rand(2, 4, 5, 5) * 2)
    out.sum().backward()
    assert layer.reduce_weight.grad[:, 4:].abs().sum() > 0  # the std half
    assert not torch.equal(layer.last_alpha, torch.ones_like(layer.last_alpha))


def test_sfpow_is_sf_then_pow():
    layer = build_quant_activation(dict(type='SFPOW', resolution=10, exponent='direct'), 3)
    assert isinstance(layer, SFPOW) and layer.sf.inplace and not layer.pow.inplace
    x = torch.randn(2, 3, 4, 4) * 2
    expected = SF(10, with_relu=True)(x.clone())
    assert torch.equal(layer(x.clone()), expected)  # p = 1: SF alone
    with torch.no_grad():
        layer.pow.alpha.fill_(0.5)
    xx = x.clone().requires_grad_()
    y = layer(xx * 1)
    torch.testing.assert_close(y, expected.clamp(min=0).sqrt())
    y.sum().backward()
    assert torch.isfinite(xx.grad).all() and layer.pow.alpha.grad.abs().sum() > 0


@pytest.mark.parametrize('make,match', [
    (lambda: POW(8, exponent='power'), r"exponent must be one of 'offset', 'direct'"),
    (lambda: HPOW(8, exponent='alpha'), r"'offset', 'direct'"),
    (lambda: HPOW(8, statistics='std'), r"'mean', 'mean_std'"),
    (lambda: POW(8, exponent='direct', alpha_range=(0.0, 5.0)), 'p > 0'),
    (lambda: POW(8, exponent='direct', alpha_range=(0.1, 0.9)), r'low <= 1 <= high'),
    (lambda: POW(8, alpha_range=(0.5, 2)), r'low <= 0 <= high'),
    (lambda: build_quant_activation(dict(type='POW'), 8, 'before_relu'),
     r"unknown quant_position 'before_relu'.*valid: 'after_relu', 'replace_relu'"),
])
def test_bad_reading_values_name_the_valid_ones(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_quant_position_on_the_backbone_is_named():
    with pytest.raises(ValueError, match="ResNetPOW: unknown quant_position 'replace'"):
        ResNetPOW(depth=18, quant_position='replace')


# ------------------------------------------------------------------ the reading in the weights
def _backbone(**quant):
    return ResNetPOW(depth=18, base_channels=8, num_stages=2, strides=(1, 2), dilations=(1, 1),
                     out_indices=(1, ), stage_with_quant=(False, True), quant_cfg=quant)


def test_the_reading_travels_with_the_weights(tmp_path):
    from mmengine.runner import load_checkpoint
    direct = _backbone(exponent='direct')
    with torch.no_grad():
        for m in direct.modules():
            if isinstance(m, POW):
                m.alpha.uniform_(0.05, 0.9)
    path = tmp_path / 'direct.pth'
    torch.save({'state_dict': direct.state_dict()}, path)
    same = _backbone(exponent='direct')
    load_checkpoint(same, str(path), map_location='cpu', strict=True, logger='silent')
    x = torch.randn(1, 3, 32, 32)
    direct.eval(), same.eval()
    assert torch.equal(direct(x)[0], same(x)[0])
    with pytest.raises(ExponentReadingError, match=r"trained with exponent='direct', "
                       r"alpha_range=\(0.01, 5\), this model is built with exponent='offset'"):
        load_checkpoint(_backbone(), str(path), map_location='cpu', logger='silent')
    with pytest.raises(ExponentReadingError, match=r'alpha_range=\(0.1, 5\)'):
        load_checkpoint(_backbone(exponent='direct', alpha_range=(0.1, 5.0)), str(path),
                        map_location='cpu', logger='silent')
    ps = extract_exponents(path)
    assert ps and all(((0.05 <= p) & (p <= 0.9)).all() for p in ps.values())


def test_checkpoints_without_a_reading_record_are_offset_exponents(tmp_path):
    from mmengine.runner import load_checkpoint
    old = {k: v for k, v in _backbone().state_dict().items() if not k.endswith('_extra_state')}
    for k in old:
        if k.endswith('.alpha'):
            old[k] = torch.full_like(old[k], 0.25)
    path = tmp_path / 'old.pth'
    torch.save({'state_dict': old}, path)
    offset = _backbone()
    load_checkpoint(offset, str(path), map_location='cpu', strict=True, logger='silent')
    assert all(torch.equal(m.exponents(), torch.full_like(m.exponents(), 1.25))
               for m in offset.modules() if isinstance(m, POW))
    with pytest.raises(ExponentReadingError, match="without a reading record.*'offset'"):
        load_checkpoint(_backbone(exponent='direct'), str(path), map_location='cpu',
                        logger='silent')
    assert all(np.allclose(p, 1.25) for p in extract_exponents(path).values())
    # plain ResNet weights (no quantizer keys) load into either reading at the identity
    plain = {k: v for k, v in old.items() if not k.endswith('.alpha')}
    direct = _backbone(exponent='direct')
    load_checkpoint(direct, str(_save(tmp_path, plain)), map_location='cpu', logger='silent')
    assert all(torch.equal(m.alpha, torch.ones_like(m.alpha)) for m in direct.modules()
               if isinstance(m, POW))


def _save(tmp_path, state):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': state}, path)
    return path


def test_reference_formula_agrees_on_the_direct_reading():
    """The independent reference of tests/quantizer_reference.py with p = alpha."""
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2
    p = torch.rand(1, 3, 2, dtype=torch.float64) * 0.9 + 0.05
    layer = POW(3, num_splits=2, exponent='direct').double()
    with torch.no_grad():
        layer.alpha.copy_(p[0])
    torch.testing.assert_close(layer(x), pow_reference(x, p, 1.0, 2))
