"""The device path (fq_det/models/quantizers/fused.py, Triton kernels) against the torch path.

On a CUDA machine the kernels run on the GPU; elsewhere in Triton's interpreter on CPU
tensors (``TRITON_INTERPRET=1`` and ``FQ_DET_FUSED_CPU=1``, set per test; the kernels'
module is imported only then, so it is decorated for the interpreter). Also: at most 2
launches forward and 3 backward per quantizer call (counted with torch.profiler), no
synchronising operator, and every kernel specialisation these tests launch compiles for
NVIDIA sm_80 / sm_90 (Triton's compiler, no GPU needed).
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from quantizer_reference import parity_inputs, pow_reference

from fq_det.models import HPOW, POW, SF
from fq_det.models.quantizers import functional as F_q
from fq_det.models.quantizers import fused, kernels
from fq_det.models.quantizers.launches import count_calls

pytest.importorskip('triton')
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
REPO = Path(__file__).resolve().parents[2]
LAUNCHED: dict = {}  # kernel name -> the (args, meta) of each distinct specialisation


@pytest.fixture
def device_path(monkeypatch):
    """``on(True)``: the device path; ``on(False)``: the torch path (the reference)."""
    if DEVICE == 'cpu':
        import triton.language as tl
        from triton.runtime.interpreter import InterpretedFunction
        assert os.environ.get('TRITON_INTERPRET') == '1' and isinstance(tl.zeros,
                                                                         InterpretedFunction), \
            'Triton was imported before TRITON_INTERPRET=1 was set (tests/conftest.py sets it)'
    assert fused.triton_kernels() is not None
    launch = fused._launch

    def recording(name, kernel, grid, *args, **meta):
        types = [_arg_type(a) for a in args]  # one per code path: tile shapes left out
        key = json.dumps([t for t in types if t.startswith('*')] +
                         sorted((k, v) for k, v in meta.items() if k not in ('BC', 'BS')))
        LAUNCHED.setdefault(name, {})[key] = (types, meta)
        launch(name, kernel, grid, *args, **meta)

    monkeypatch.setattr(fused, '_launch', recording)
    monkeypatch.setattr(kernels, '_lib', None)  # the reference: the torch path, not the C kernel
    monkeypatch.setattr(kernels, '_tried', True)

    def on(flag: bool) -> None:
        monkeypatch.setenv('FQ_DET_FUSED_CPU', '1' if flag else '0')
        if DEVICE == 'cuda':
            monkeypatch.setattr(fused, 'DTYPES', fused.DTYPES if flag else ())

    return on


def _arg_type(a):
    if torch.is_tensor(a):
        return '*' + {torch.float32: 'fp32', torch.float64: 'fp64', torch.float16: 'fp16',
                      torch.bfloat16: 'bf16'}[a.dtype]
    if isinstance(a, float):
        return 'fp32'
    return 'i64' if abs(a) >= 2**31 else 'i32'


def _pow_run(x, p, w, k, g, relu=True, learn_w=False, clamp=None, learn_x=True, learn_p=True,
             tensor_w=False):
    """``[y, dL/dx, dL/dp, dL/dw]``, ``None`` for what does not require a gradient; the width
    a tensor with ``learn_w`` or ``tensor_w`` (requiring a gradient with ``learn_w``)."""
    xx = x.to(DEVICE).clone().requires_grad_(learn_x)
    pp = p.to(DEVICE).clone().requires_grad_(learn_p)
    ww = torch.tensor(w, device=DEVICE, requires_grad=learn_w) if learn_w or tensor_w else w
    y = F_q.pow_quant(xx * 1, pp, ww, k, relu=relu, inplace=True, clamp=clamp)
    y.backward(g.to(DEVICE, y.dtype))
    return [t.cpu() if t is not None else None
            for t in (y.detach(), xx.grad, pp.grad, ww.grad if learn_w else None)]


def _both(device_path, fn, *args, **kwargs):
    device_path(True)
    got = fn(*args, **kwargs)
    device_path(False)
    return got, fn(*args, **kwargs)


def _close(got, ref, rtol=2e-5):
    for a, b in zip(got, ref):
        if b is None:
            assert a is None
            continue
        finite = b[torch.isfinite(b)]
        scale = finite.abs().max().item() if finite.numel() else 1.0
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)


# ------------------------------------------------------------------ POW values and gradients
@pytest.mark.parametrize('k,w', [(1, 1.0), (1, 0.5), (2, 1.0), (16, 0.7)])
@pytest.mark.parametrize('batch_exponents', [False, True], ids=['POW', 'HPOW'])
def test_pow_matches_torch_path(k, w, batch_exponents, device_path):
    x, p, g = parity_inputs(k, batch_exponents)
    got, ref = _both(device_path, _pow_run, x, p, w, k, g)
    _close(got, ref)
    assert (got[0][x <= 0] == 0).all() and torch.equal(got[1][x <= 0], torch.zeros_like(got[1][x <= 0]))


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('relu', [True, False])
def test_pow_learnable_width_clamp_and_odd_symmetry(k, relu, device_path):
    x, p, g = parity_inputs(k, False, seed=2)
    raw = p - 1  # alpha, some at and beyond the clamp's limits
    raw[0, 2] = -0.9
    raw[0, 3] = 4.5
    got, ref = _both(device_path, _pow_run, x, raw, 0.8, k, g, relu=relu, learn_w=True,
                     clamp=(-0.5, 4.0, 1.0))
    _close(got, ref)
    assert torch.equal(got[2][0, :4], torch.zeros_like(got[2][0, :4]))  # at / beyond the limits


@pytest.mark.parametrize('k', [1, 4])
@pytest.mark.parametrize('batch_exponents', [False, True], ids=['POW', 'HPOW'])
def test_pow_width_gradient_with_frozen_exponents(k, batch_exponents, device_path):
    """A learnable width with frozen exponents (``need_p=False``, ``need_w=True``): dL/dw is
    the torch path's and the same on every call (the reduction once left it uninitialised)."""
    x, p, g = parity_inputs(k, batch_exponents, seed=6)
    device_path(True)
    first = _pow_run(x, p, 0.8, k, g, learn_w=True, learn_p=False)
    again = _pow_run(x, p, 0.8, k, g, learn_w=True, learn_p=False)
    device_path(False)
    ref = _pow_run(x, p, 0.8, k, g, learn_w=True, learn_p=False)
    assert first[2] is None and ref[2] is None and first[3] is not None
    assert torch.equal(first[3], again[3]), (first[3], again[3])
    _close(first, ref)


@pytest.mark.parametrize('learn_x,learn_p,learn_w',
                         [c for c in itertools.product([True, False], repeat=3) if any(c)])
def test_pow_every_needed_gradient_combination(learn_x, learn_p, learn_w, device_path):
    """Whichever of dL/dx, dL/dp and dL/dw are needed, they are the torch path's (the width a
    tensor throughout: the kernels read it from memory, needed or not; with neither dL/dp nor
    dL/dw needed the backward kernel once wrote width sums past its one-element buffer)."""
    x, p, g = parity_inputs(2, False, seed=7)
    got, ref = _both(device_path, _pow_run, x, p, 0.8, 2, g, relu=False, learn_w=learn_w,
                     learn_x=learn_x, learn_p=learn_p, tensor_w=True)
    assert [t is None for t in got] == [t is None for t in ref] == \
        [False, not learn_x, not learn_p, not learn_w]
    _close(got, ref)


def test_pow_identity_is_bit_exact(device_path):
    device_path(True)
    x = torch.randn(2, 5, 7, 3, device=DEVICE) * 3
    for k in (1, 4):
        p = torch.ones(1, 5, k, device=DEVICE)
        assert torch.equal(F_q.pow_quant(x, p, 1.0, k, relu=True), x.clamp(min=0))
        assert torch.equal(F_q.pow_quant(x, p, 1.0, k), x)


@pytest.mark.parametrize('k', [1, 3])
def test_pow_at_inf_nan_and_overflow(k, device_path):
    inf, nan = float('inf'), float('nan')
    x = torch.tensor([inf, 1e30, 3e38, 1e20, 2.5, 0.5, nan, -inf]).repeat(1, 3, 1)
    p = torch.tensor([1.3, 1.0001, 1.0]).view(1, 3, 1).repeat(1, 1, k)
    if k > 1:
        p[0, :, 0] = torch.tensor([0.7, 1.0001, 1.0])
    got, ref = _both(device_path, _pow_run, x, p, 1.0, k, torch.ones_like(x))
    _close(got, ref, rtol=1e-4)
    y, gx = got[0], got[1]
    assert torch.isinf(y[0, :, 0]).all() and torch.isinf(y[0, 0, 1])
    assert torch.isnan(y[0, :, 6]).all() and torch.equal(y[0, :, 7], torch.zeros(3))
    assert y[0, 1, 2].item() == pytest.approx(3.0267e38, rel=1e-4)
    assert torch.isnan(gx[0, :, 6]).all() and torch.isfinite(gx[0, :, [0, 1, 2, 3, 4, 5, 7]]).all()
    assert gx[0, 2, 0] == 1


@pytest.mark.parametrize('k', [1, 2])
def test_pow_exponent_gradient_never_nan_for_finite_outputs(k, device_path):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 4, 64, generator=gen) * 1e30 + 5e29
    p = torch.full((1, 4, k), 1.2)
    got, ref = _both(device_path, _pow_run, x, p, 1.0, k, torch.randn(x.shape, generator=gen))
    assert torch.isfinite(got[0]).all() and not torch.isnan(got[2]).any()
    _close(got, ref, rtol=1e-4)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_dtypes_computed_in_float32(dtype, device_path):
    x, p, g = parity_inputs(2, False, seed=4)
    x = x.to(dtype)
    x.view(-1)[:4] = torch.tensor([300.0, 255.0, 2e4, 1e-3]).to(dtype)
    p[0, 0] = 2.0  # 300**2 = 90000 > 65504 (float16: inf), 255**2 = 65025 (finite)
    got, ref = _both(device_path, _pow_run, x, p, 1.0, 2, g)
    assert got[0].dtype == dtype and got[1].dtype == dtype
    # the same float32 value rounded to the dtype, up to one step where the two float32
    # values straddle a rounding boundary
    torch.testing.assert_close(got[0].float(), ref[0].float(), rtol=1e-2, atol=0, equal_nan=True)
    same = got[0] == ref[0]
    assert same.float().mean() > 0.99
    torch.testing.assert_close(got[1][same].float(), ref[1][same].float(), rtol=1e-2, atol=1e-3)
    _close(got[2:], ref[2:], rtol=2e-2)
    if dtype == torch.float16:
        assert torch.isinf(got[0].view(-1)[0]) and torch.isfinite(got[0].view(-1)[1])


def test_layouts_empty_batches_and_in_place(device_path):
    device_path(True)
    x, p, _ = parity_inputs(2, False)
    x, p = x.to(DEVICE), p.to(DEVICE)
    ref = F_q.pow_quant(x, p, 1.0, 2, relu=True)
    cl = x.to(memory_format=torch.channels_last)
    out = F_q.pow_quant(cl, p, 1.0, 2, relu=True)
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, ref)
    xt = x.transpose(2, 3)  # spatial dims that do not flatten: copied first
    assert torch.equal(F_q.pow_quant(xt, p, 1.0, 2, relu=True), ref.transpose(2, 3))
    base = x.clone()
    y = F_q.pow_quant(base, p, 1.0, 2, relu=True, inplace=True)
    assert y.data_ptr() == base.data_ptr() and torch.equal(y, ref)
    xe = torch.randn(0, 6, 5, 5, device=DEVICE, requires_grad=True)
    pe = p.clone().requires_grad_()
    F_q.pow_quant(xe * 1, pe, 1.0, 2, relu=True).sum().backward()
    assert xe.grad.shape == xe.shape and torch.count_nonzero(pe.grad) == 0
    assert torch.allclose(ref.cpu(), pow_reference(x.cpu(), p.cpu(), 1.0, 2, relu=True),
                          rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ SF and HPOW
@pytest.mark.parametrize('relu', [True, False])
def test_sf_matches_torch_path_exactly(relu, device_path):
    x = torch.randn(2, 3, 7, 5) * 3
    x.view(-1)[:4] = torch.tensor([-0.0, 0.04, -0.05, float('nan')])

    def run():
        xx = x.to(DEVICE).clone().requires_grad_()
        y = SF(10, with_relu=relu)(xx * 1)
        y.backward(torch.full_like(y, 2.0))
        return y.detach().cpu(), xx.grad.cpu()

    (y, gx), (y_ref, gx_ref) = _both(device_path, run)
    assert torch.equal(y.nan_to_num(7), y_ref.nan_to_num(7))
    assert torch.equal(torch.signbit(y), torch.signbit(y_ref))  # the ReLU mask bits
    assert torch.equal(gx, gx_ref)


@pytest.mark.parametrize('statistics', ['mean', 'mean_std'])
@pytest.mark.parametrize('k', [1, 2])
def test_hpow_layer_matches_torch_path(statistics, k, device_path):
    torch.manual_seed(0)
    layer = HPOW(6, num_splits=k, reduction=2, statistics=statistics, with_relu=True,
                 inplace=True).to(DEVICE)
    with torch.no_grad():
        layer.expand_weight.normal_(0, 0.3)
        layer.expand_bias.uniform_(-0.3, 0.3)
    x, _, g = parity_inputs(k, True, seed=5)

    def run():
        layer.zero_grad()
        xx = x.to(DEVICE).clone().requires_grad_()
        y = layer(xx * 1)
        y.backward(g.to(DEVICE))
        return [t.detach().cpu() for t in (y, xx.grad, layer.expand_weight.grad,
                                            layer.expand_bias.grad, layer.reduce_weight.grad)]

    got, ref = _both(device_path, run)
    _close(got, ref, rtol=1e-4)


# ------------------------------------------------------------------ launches and synchronisation
def _layers():
    """The layers counted (not in place, so the input is a leaf and nothing else runs)."""
    return {
        'SF-10': SF(10, with_relu=True),
        'POW-1': POW(8, with_relu=True),
        'POW-16, learnable width': POW(8, num_splits=16, learnable_width=True, with_relu=True),
        'HPOW-1': HPOW(8, reduction=2, with_relu=True),
    }


#: per layer: the device path's kernels, and what else runs (POW's exponent clamp runs
#: inside the kernels; a learnable width is clamped by torch; HPOW's branch is torch's)
EXPECTED_CALLS = {
    'SF-10': (['triton::sf_forward'], ['triton::sf_backward']),
    'POW-1': (['triton::pow_forward'], ['triton::pow_backward', 'triton::pow_reduce']),
    'POW-16, learnable width': (
        ['aten::clamp', 'triton::pow_forward'],
        ['triton::pow_backward', 'triton::pow_reduce', 'aten::scalar_tensor', 'aten::gt',
         'aten::where']),
    'HPOW-1': (
        ['triton::row_moments', 'aten::linear', 'aten::relu', 'aten::linear', 'aten::clamp',
         'triton::pow_forward'],
        ['triton::pow_backward', 'triton::pow_reduce', 'aten::mm', 'aten::mm', 'aten::sum',
         'aten::threshold_backward', 'aten::mm', 'aten::mm', 'aten::sum',
         'triton::add_channel_grad']),
}


@pytest.mark.parametrize('size', [(2, 8, 5, 7), (3, 8, 40, 30)])
def test_launch_counts_are_bounded_and_nothing_synchronises(size, device_path):
    """Per quantizer call 1 launch forward and at most 2 backward (the per-channel
    exponent-gradient reduction included; target: 2 and 3), whatever the input size, and
    no .item(), bool() or nonzero in either direction."""
    if DEVICE == 'cuda':
        pytest.skip('CPU-run kernels: on CUDA the profiler counts kernels, not these names')
    device_path(True)
    for name, layer in _layers().items():
        for param in layer.parameters():
            param.data.uniform_(-0.3, 0.3)
        x1 = torch.randn(size, requires_grad=True)
        box = {}
        fwd = count_calls(lambda: box.setdefault('y', layer(x1)))
        g = torch.randn_like(box['y'])
        bwd = count_calls(lambda: torch.autograd.grad(box['y'], [x1, *layer.parameters()], g))
        assert fwd.syncs == [] and bwd.syncs == [], (name, fwd.syncs, bwd.syncs)
        assert (fwd.names, bwd.names) == tuple(EXPECTED_CALLS[name]), (name, fwd.names,
                                                                       bwd.names)
        fused_fwd = [n for n in fwd.names if n.startswith('triton::')]
        fused_bwd = [n for n in bwd.names if n.startswith('triton::')]
        if name != 'HPOW-1':  # HPOW: its mean's two kernels come on top
            assert len(fused_fwd) <= 2 and len(fused_bwd) <= 3


@pytest.mark.skipif(DEVICE != 'cuda', reason='needs a CUDA GPU')
def test_cuda_launch_counts_and_no_synchronisation(device_path):
    device_path(True)
    for name, layer in _layers().items():
        layer.to(DEVICE)
        for param in layer.parameters():
            param.data.uniform_(-0.3, 0.3)
        x1 = torch.randn(2, 8, 75, 125, device=DEVICE, requires_grad=True)
        box = {}
        fwd = count_calls(lambda: box.setdefault('y', layer(x1)), DEVICE)
        g = torch.randn_like(box['y'])
        bwd = count_calls(lambda: torch.autograd.grad(box['y'], [x1, *layer.parameters()], g),
                          DEVICE)
        assert fwd.syncs == [] and bwd.syncs == [], (name, fwd.syncs, bwd.syncs)
        want = tuple(len(names) for names in EXPECTED_CALLS[name])
        assert (fwd.launches, bwd.launches) <= (want[0] + 2, want[1] + 4), (name, fwd.names,
                                                                          bwd.names)


def test_torch_path_synchronises_and_is_counted(device_path):
    """The counter sees what the device path avoids: the torch path's identity check."""
    device_path(False)
    layer = POW(8, with_relu=True)
    layer.alpha.data.uniform_(-0.3, 0.3)
    x = torch.randn(2, 8, 5, 7)
    count = count_calls(lambda: layer(x))
    assert 'aten::is_nonzero' in count.syncs and count.launches > 3


# ------------------------------------------------------------------ GPU compilation
_COMPILE = '''
import json, sys
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile
from fq_det.models.quantizers import triton_kernels as tk
done = 0
for name, cases in json.loads(sys.argv[1]).items():
    fn = getattr(tk, name + '_kernel')
    for types, meta in cases:
        names = [a for a in fn.arg_names if a not in meta]
        signature = dict(zip(names, types), **{m: 'constexpr' for m in meta})
        for arch in (80, 90):  # A100, H100 / H200
            compile(ASTSource(fn, signature, constexprs=meta), target=GPUTarget('cuda', arch, 32))
            done += 1
print('COMPILED', done)
'''


def test_launched_kernels_compile_for_nvidia_gpus():
    """Every specialisation the tests above launched, compiled for sm_80 and sm_90 (the
    interpreter checks the maths, not that the real compiler accepts the kernels)."""
    if not LAUNCHED:
        pytest.skip('run with the parity tests of this module')
    cases = {name: list(specs.values()) for name, specs in LAUNCHED.items()}
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    run = subprocess.run([sys.executable, '-c', _COMPILE, json.dumps(cases)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f'COMPILED {2 * sum(map(len, cases.values()))}' in run.stdout

