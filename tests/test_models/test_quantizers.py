"""Quantizer layers SF, POW-k and HPOW: forward definitions, gradients, edge cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from quantizer_reference import pow_closed_form, pow_reference

from fq_det.models import HPOW, POW, SF, build_quant_activation, pow_quant
from fq_det.models.quantizers import functional as F_q

torch.manual_seed(0)


# ----------------------------------------------------------------------------- SF
def test_sf_forward_is_scaled_floor_exactly():
    x = torch.randn(2, 3, 7, 5) * 3
    for r in (10.0, 100.0, 3.0):
        assert torch.equal(SF(r)(x), torch.floor(r * x) / r)
        assert torch.equal(SF(r, with_relu=True)(x), torch.floor(r * x.clamp(min=0)) / r)


def test_sf_gradient_is_straight_through():
    x = torch.tensor([[-1.3, -0.05, 0.04, 0.07, 0.5, 2.37]], requires_grad=True)
    SF(10)(x).backward(torch.full_like(x, 2.0))
    assert torch.equal(x.grad, torch.full_like(x, 2.0))  # no ReLU: dy/dx = 1 everywhere
    x.grad = None
    y = SF(10, with_relu=True)(x)
    y.backward(torch.full_like(x, 2.0))
    # fused ReLU: 1 for x > 0, including 0 < x < 1/r where floor gives 0
    assert torch.equal(x.grad, torch.tensor([[0.0, 0.0, 2.0, 2.0, 2.0, 2.0]]))
    assert torch.equal(y, torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.5, 2.3]]))


def test_fused_activation_is_in_place():
    for cfg in (dict(type='SF', resolution=10), dict(type='POW', num_splits=2), dict(type='HPOW')):
        act = build_quant_activation(cfg, 4)
        base = torch.randn(1, 4, 3, 3, requires_grad=True)
        x = base * 1.0
        y = act(x)
        assert y.data_ptr() == x.data_ptr()
        y.sum().backward()
        assert torch.isfinite(base.grad).all()
    assert isinstance(build_quant_activation(None, 4), torch.nn.ReLU)


# ----------------------------------------------------------------------------- POW
@pytest.mark.parametrize('k', [1, 4])
@pytest.mark.parametrize('relu', [False, True])
def test_pow_and_hpow_are_identity_at_init(k, relu):
    x = torch.randn(2, 6, 5, 4) * 3
    expected = x.clamp(min=0) if relu else x
    assert torch.equal(POW(6, num_splits=k, with_relu=relu)(x), expected)
    hpow = HPOW(6, num_splits=k, reduction=2, with_relu=relu)
    assert torch.equal(hpow(x), expected)
    assert hpow.last_alpha.shape == ((2, 6) if k == 1 else (2, 6, k))
    assert torch.count_nonzero(hpow.last_alpha) == 0


@pytest.mark.parametrize('k,w', [(1, 1.0), (1, 0.5), (3, 1.0), (4, 0.7)])
@pytest.mark.parametrize('relu', [False, True])
def test_pow_matches_closed_form(k, w, relu):
    layer = POW(3, num_splits=k, split_width=w, with_relu=relu).double()
    with torch.no_grad():
        layer.alpha.uniform_(-0.45, 2.0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2.5
    y = layer(x).detach().numpy()
    ref = pow_closed_form(x.numpy(), layer.alpha.detach().numpy(), w, k, relu)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    # float32 uses exp2/log2 internally: still within float32 rounding of the closed form
    y32 = POW(3, num_splits=k, split_width=w, with_relu=relu)
    y32.alpha.data.copy_(layer.alpha.data.float())
    np.testing.assert_allclose(y32(x.float()).detach().numpy(), ref, rtol=2e-5, atol=1e-5)


def test_pow_clamps_alpha():
    layer = POW(2, alpha_range=(-0.5, 4.0))
    layer.alpha.data = torch.tensor([-3.0, 9.0])
    x = torch.full((1, 2, 1, 1), 0.25)
    y = layer(x).flatten()
    assert torch.allclose(y, torch.tensor([0.25**0.5, 0.25**5.0]))


@pytest.mark.parametrize('k', [2, 4])
def test_pow_is_continuous_at_breakpoints_and_odd(k):
    w = 0.8
    layer = POW(1, num_splits=k, split_width=w).double()
    with torch.no_grad():
        layer.alpha.copy_(torch.linspace(-0.4, 3.0, k).view(1, k))
    eps = 1e-9
    for j in range(1, k):
        b = j * w
        vals = layer(torch.tensor([b - eps, b, b + eps], dtype=torch.float64).view(1, 1,
                                                                                   3)).flatten()
        assert vals[1].item() == pytest.approx(b, abs=1e-15)  # f(b_j) = b_j
        assert abs(vals[0] - vals[1]) < 1e-6 and abs(vals[2] - vals[1]) < 1e-6
    x = torch.randn(1, 1, 100, dtype=torch.float64) * 3
    assert torch.equal(layer(-x), -layer(x))
    # monotonic and maps each segment [b_j, b_j + w) onto itself
    grid = torch.linspace(0, k * w - 1e-6, 2001, dtype=torch.float64).view(1, 1, -1)
    out = layer(grid).flatten()
    assert torch.all(out[1:] >= out[:-1])
    assert torch.equal(
        torch.floor(out / w).clamp(max=k - 1),
        torch.floor(grid.flatten() / w).clamp(max=k - 1))


def _away_from_breakpoints(shape, w, k, dtype=torch.float64):
    """Values whose fractional position inside their segment is in [0.15, 0.85]."""
    seg = torch.randint(0, k + 1, shape).to(dtype)
    frac = 0.15 + 0.7 * torch.rand(shape, dtype=dtype)
    sign = torch.where(torch.rand(shape) < 0.5, -1.0, 1.0).to(dtype)
    return sign * (seg + frac) * w


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('relu', [False, True])
def test_pow_gradcheck_x_alpha_width(k, relu):
    w = 0.9
    x = _away_from_breakpoints((2, 3, 3, 2), w, k).requires_grad_()
    alpha = (torch.rand(1, 3, k, dtype=torch.float64) * 1.6 - 0.4).requires_grad_()
    width = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: pow_quant(a, 1 + b, c, k, relu=relu),
                                    (x, alpha, width))
    # per-sample exponents (what HPOW passes)
    alpha_n = (torch.rand(2, 3, k, dtype=torch.float64) * 1.6 - 0.4).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: pow_quant(a, 1 + b, w, k, relu=relu), (x, alpha_n))


def test_pow_module_gradcheck_with_learnable_width():
    layer = POW(3, num_splits=2, split_width=0.9, learnable_width=True).double()
    with torch.no_grad():
        layer.alpha.uniform_(-0.4, 1.5)
    x = _away_from_breakpoints((2, 3, 2, 2), 0.9, 2).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x, ))
    y = layer(x)
    grads = torch.autograd.grad(y.sum(), (layer.alpha, layer.width))
    assert grads[0].shape == (3, 2) and grads[1].abs() > 0


def test_hpow_gradcheck_through_the_alpha_branch():
    layer = HPOW(4, num_splits=2, reduction=2, with_relu=True).double()
    with torch.no_grad():
        layer.expand_weight.normal_(0, 0.3)
        layer.expand_bias.normal_(0, 0.2)
    x = _away_from_breakpoints((2, 4, 3, 3), 1.0, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: layer(t * 1.0), (x, ))
    params = [layer.reduce_weight, layer.expand_weight]
    assert torch.autograd.gradcheck(
        lambda w1, w2: torch.func.functional_call(layer, {
            'reduce_weight': w1,
            'expand_weight': w2
        }, (x.detach() * 1.0, )), params)


@pytest.mark.parametrize('k', [1, 4])
@pytest.mark.parametrize('relu', [False, True])
@pytest.mark.parametrize('alpha_value', [-0.5, 4.0, -2.0, 9.0, 0.3])
def test_gradients_finite_at_edge_cases(k, relu, alpha_value):
    edge = torch.tensor([
        0.0, -0.0, 1.0, 2.0, 3.0, -1.0, -3.0, 1e4, -1e4, 1e-30, 1e-40, -1e-40, 1.0 - 1e-7,
        1.0 + 1e-7, 0.5
    ])
    x = edge.view(1, 1, -1).repeat(2, 3, 1).requires_grad_()
    layer = POW(3, num_splits=k, with_relu=relu)
    layer.alpha.data.fill_(alpha_value)
    y = layer(x)
    y.backward(torch.ones_like(y))
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.alpha.grad).all()
    if relu:
        assert torch.all(x.grad[..., [5, 6, 8]] == 0)  # negative inputs: ReLU blocks the gradient
    hpow = HPOW(3, num_splits=k, reduction=1, with_relu=relu)
    hpow.expand_bias.data.fill_(alpha_value)
    x2 = x.detach().clone().requires_grad_()
    hpow(x2 * 1.0).sum().backward()
    assert torch.isfinite(x2.grad).all() and torch.isfinite(hpow.expand_bias.grad).all()
    sf = SF(10, with_relu=relu)
    x3 = x.detach().clone().requires_grad_()
    sf(x3).sum().backward()
    assert torch.isfinite(x3.grad).all()


@pytest.mark.parametrize('cfg', [
    dict(type='SF', resolution=10),
    dict(type='POW'),
    dict(type='POW', num_splits=4),
    dict(type='HPOW', reduction=2)
])
def test_autocast_bfloat16(cfg):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    act = build_quant_activation(cfg, 8)
    for p in act.parameters():
        p.data.uniform_(-0.3, 0.3)
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = act(conv(x))
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    grads = [p.grad for p in [*conv.parameters(), *act.parameters()] if p.grad is not None]
    assert len(grads) >= 2 and all(torch.isfinite(g).all() for g in grads)
    ref = build_quant_activation(cfg, 8)
    ref.load_state_dict(act.state_dict())
    y32 = ref(conv(x).detach())
    assert torch.allclose(y.float(), y32, rtol=0.05, atol=0.15)


def test_row_blocks_cover_big_tensors():
    """Inputs larger than one work block (and non-contiguous ones) give the same result."""
    x = torch.randn(2, 5, 190, 190) * 2
    p = 1 + torch.rand(1, 5, 2) * 0.8
    y = pow_quant(x, p, 1.0, 2, relu=True)
    assert torch.allclose(y, pow_reference(x, p, 1.0, 2, relu=True), rtol=1e-5, atol=1e-6)
    xt = x.transpose(2, 3)
    assert torch.allclose(pow_quant(xt, p, 1.0, 2),
                          pow_reference(xt, p, 1.0, 2),
                          rtol=1e-5,
                          atol=1e-6)
    assert x.numel() > 2 * F_q.BLOCK_ELEMS
    s = SF(10, with_relu=True)(x.clone())
    assert torch.equal(s, torch.floor(10 * x.clamp(min=0)) / 10)


# ----------------------------------------------------------------------------- plugins, errors
def test_quantizers_build_as_mmcv_plugin_layers():
    from mmcv.cnn import build_plugin_layer
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    for t in ('SF', 'POW', 'HPOW'):
        name, layer = build_plugin_layer(dict(type=t), in_channels=16, postfix='_q')
        assert name == f'{t.lower()}_q'
        x = torch.rand(1, 16, 4, 4)
        assert layer(x).shape == x.shape
    _, layer = build_plugin_layer(dict(type='POW', num_splits=2), in_channels=16, postfix=1)
    assert layer.alpha.shape == (16, 2)


@pytest.mark.parametrize('make,match', [
    (lambda: SF(0), 'resolution'),
    (lambda: SF(-1.0), 'resolution'),
    (lambda: POW(8, num_splits=0), 'num_splits'),
    (lambda: HPOW(8, num_splits=0), 'num_splits'),
    (lambda: POW(8, split_width=0), 'split_width'),
    (lambda: POW(), 'channels'),
    (lambda: POW(8, in_channels=4), 'disagree'),
    (lambda: HPOW(8, reduction=0), 'reduction'),
    (lambda: POW(8, alpha_range=(0.5, 2)), 'alpha_range'),
    (lambda: POW(8, alpha_reg=dict(type='L3', weight=1.0)), "'L1', 'L2'"),
    (lambda: POW(8, alpha_reg=dict(type='L1', weight=-1.0)), '>= 0'),
    (lambda: POW(8, alpha_reg=dict(type='L1', weight=1.0, scale=2)), 'valid keys'),
    (lambda: build_quant_activation(dict(type='FLOOR'), 8), "'SF', 'POW', 'HPOW'"),
    (lambda: build_quant_activation(dict(type='PWO'), 8), "did you mean 'POW'"),
    (lambda: build_quant_activation(dict(type='POW', num_split=2), 8),
     r"unknown POW quant_cfg key 'num_split' \(did you mean 'num_splits'.*; valid: 'num_splits', "
     r"'split_width', 'alpha_reg', 'learnable_width', 'alpha_range'"),
    (lambda: build_quant_activation(dict(type='SF', resolutoin=10), 8), "valid: 'resolution'"),
    (lambda: build_quant_activation(dict(type='HPOW', reduce=4), 8), "'reduction'"),
    (lambda: build_quant_activation(dict(type='POW', channels=3), 8), 'must not set'),
])
def test_invalid_arguments_name_the_valid_choices(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_wrong_channel_count_is_reported():
    with pytest.raises(ValueError, match='8 channels'):
        POW(8)(torch.zeros(1, 4, 2, 2))


# ----------------------------------------------------------------------------- edge inputs
@pytest.fixture(params=['kernel', 'torch'])
def pow_path(request, monkeypatch):
    """Run POW/HPOW through the compiled kernels (where they apply) or the torch path."""
    from fq_det.models.quantizers import kernels
    if request.param == 'kernel' and kernels.pow_kernel() is None:
        pytest.skip('no C compiler: the kernels are off')
    if request.param == 'torch':
        monkeypatch.setattr(kernels, '_lib', None)
        monkeypatch.setattr(kernels, '_tried', True)
    return request.param


@pytest.mark.parametrize('cfg', [
    dict(type='SF', resolution=10),
    dict(type='POW', num_splits=3),
    dict(type='HPOW', num_splits=2, reduction=2)
])
@pytest.mark.parametrize('fused', [True, False])
def test_empty_batch_passes_through(cfg, fused, pow_path):
    """A batch of size 0 gives an empty output and empty/zero gradients, as a ReLU does."""
    if fused:
        layer = build_quant_activation(cfg, 4)
    else:
        args = {k: v for k, v in cfg.items() if k != 'type'}
        layer = {'SF': SF, 'POW': POW, 'HPOW': HPOW}[cfg['type']](
            **args, **({} if cfg['type'] == 'SF' else dict(channels=4)))
    for param in layer.parameters():
        param.data.uniform_(-0.3, 0.3)  # not the identity fast path
    base = torch.randn(0, 4, 5, 5, requires_grad=True)
    y = layer(base * 1.0)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert base.grad.shape == base.shape
    for param in layer.parameters():
        assert param.grad is not None and torch.count_nonzero(param.grad) == 0


def test_non_finite_inputs_follow_ieee_and_x_gradient_stays_finite(pow_path):
    """+inf stays +inf, overflow gives +inf, NaN stays NaN, -inf is 0 after the ReLU; the
    x-gradient is finite everywhere but at NaN, and 1 at +inf for p = 1 (ReLU's gradient)."""
    inf, nan = float('inf'), float('nan')
    x = torch.tensor([inf, 1e30, 3e38, nan, -inf, 2.0]).repeat(1, 3, 1)
    p = torch.tensor([1.3, 1.0001, 1.0]).view(1, 3, 1)
    for k in (1, 3):
        xx = x.clone().requires_grad_()
        y = pow_quant(xx * 1.0, p.repeat(1, 1, k), 1.0, k, relu=True, inplace=True)
        y.backward(torch.ones_like(y))
        assert torch.isinf(y[0, :, 0]).all() and torch.isnan(y[0, :, 3]).all()
        assert torch.equal(y[0, :, 4], torch.zeros(3))
        assert torch.isinf(y[0, 0, 1]) and y[0, 1, 2].item() == pytest.approx(3.0267e38, rel=1e-4)
        assert torch.isfinite(xx.grad[..., [0, 1, 2, 4, 5]]).all()
        assert torch.isnan(xx.grad[..., 3]).all() and torch.equal(xx.grad[..., 4], torch.zeros(1, 3))
        assert xx.grad[0, 2, 0] == 1 and xx.grad[0, 2, 1] == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize('k', [1, 3])
def test_alpha_gradient_not_nan_where_outputs_are_finite(k, pow_path):
    """float32 outputs ~1e36 with upstream gradients of both signs: the terms g*y*log2 u
    exceed float32's range; their sums must not become inf - inf = NaN (+-inf is the
    exact value rounded to float32)."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 8, 8, generator=gen) + 0.5) * 1e30
    layer = POW(3, num_splits=k)
    layer.alpha.data.fill_(0.2)
    y = layer(x)
    assert torch.isfinite(y).all()
    y.backward(torch.randn(y.shape, generator=gen))
    assert not torch.isnan(layer.alpha.grad).any()


@pytest.mark.parametrize('k', [1, 3])
def test_float64_gradients_finite_for_huge_finite_outputs(k):
    """float64 inputs ~1e200: the width gradient (p < 1: t = u**(1/p) overflows), the alpha
    gradients of POW and HPOW (outputs ~1e290: HPOW's expand_bias gets dL/dalpha) and the
    input gradients are finite. (HPOW's expand_weight gradient, dL/dalpha times the ~1e200
    pooled features, exceeds float64's range.)"""
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64) + 0.5) * 1e200
    x[0, 0, 0, :2] = torch.tensor([-1.0, 0.3])
    pow_layer = POW(3, num_splits=k, learnable_width=True, with_relu=True).double()
    pow_layer.alpha.data.fill_(-0.4)  # p = 0.6: outputs ~1e120
    hpow = HPOW(3, num_splits=k, reduction=1, with_relu=True).double()
    hpow.expand_bias.data.fill_(0.45)  # p = 1.45: outputs ~1e290
    for module, names in ((pow_layer, ('alpha', 'width')), (hpow, ('expand_bias', ))):
        xx = x.clone().requires_grad_()
        y = module(xx * 1.0)
        assert torch.isfinite(y).all()
        y.backward(torch.randn(y.shape, generator=gen, dtype=torch.float64))
        assert torch.isfinite(xx.grad).all()
        for name in names:
            grad = getattr(module, name).grad
            assert torch.isfinite(grad).all() and grad.abs().max() > 0, (type(module).__name__, name)
