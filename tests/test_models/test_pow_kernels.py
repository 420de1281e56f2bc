"""The compiled POW kernels (fq_det/models/quantizers/kernels.py): against the torch path,
and their cache (verified before loading, rebuilt on doubt, safe under parallel first use)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from quantizer_reference import parity_inputs, pow_reference

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


_inputs = parity_inputs


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
    monkeypatch.setattr(kernels, 'run_rows', lambda *a: calls.append(a))
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
    assert list((tmp_path / 'kernels').glob('pow_kernel-*.json'))


@pytest.mark.parametrize('k', [1, 3])
def test_nan_input_stays_nan(k, torch_path):
    x = torch.rand(1, 2, 4, 4) + 0.5
    x[0, 0, 1, 2] = float('nan')
    p = torch.full((1, 2, k), 1.3)
    y, gx, gp = _run(x, p, 1.0, k, torch.ones_like(x))
    with torch_path:
        y_ref, gx_ref, gp_ref = _run(x, p, 1.0, k, torch.ones_like(x))
    for out, grad in ((y, gx), (y_ref, gx_ref)):
        assert torch.isnan(out[0, 0, 1, 2]) and torch.isnan(grad[0, 0, 1, 2])
        assert torch.isfinite(out).sum() == out.numel() - 1
        assert torch.isfinite(grad).sum() == grad.numel() - 1
    # the NaN's channel gets a NaN exponent gradient (segment 0), the other channel's is exact
    assert torch.isnan(gp[0, 0, 0]) and torch.isnan(gp_ref[0, 0, 0])
    assert torch.isfinite(gp[0, 0, 1:]).all() and torch.isfinite(gp[0, 1]).all()
    torch.testing.assert_close(gp, gp_ref, equal_nan=True)


def test_pow4_exponent_gradient_at_inf_and_nan_matches_torch_path(torch_path):
    """POW-4 at +inf and NaN inputs: a +inf output gives its segment (the last) an infinite
    exponent gradient, a NaN output gives segment 0 a NaN, in the kernel as in the torch
    path (the kernel used to drop the NaN's term); the other segments stay finite."""
    inf, nan = float('inf'), float('nan')
    x = torch.tensor([inf, 2.5, 0.5, nan, 1.5, 3.5]).view(1, 1, 6).repeat(1, 3, 1)
    x[0, 1, 0] = 2.0  # channel 1: NaN only; channel 2: +inf only
    x[0, 2, 3] = 2.0
    p = torch.full((1, 3, 4), 1.3)
    y, gx, gp = _run(x, p, 1.0, 4, torch.ones_like(x))
    with torch_path:
        y_ref, gx_ref, gp_ref = _run(x, p, 1.0, 4, torch.ones_like(x))
    for grad in (gp, gp_ref):
        assert torch.isnan(grad[0, :2, 0]).all() and torch.isposinf(grad[0, [0, 2], 3]).all()
        assert torch.isfinite(grad[0, 2, :3]).all() and torch.isfinite(grad[0, 1, 1:]).all()
    torch.testing.assert_close(gp, gp_ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=0, equal_nan=True)


# ------------------------------------------------------------------ non-finite values
@pytest.mark.parametrize('k', [1, 3])
def test_kernel_matches_torch_path_at_inf_and_overflow(k, torch_path):
    """+inf stays +inf and a power beyond float32's range is +inf (not 2**127), as in torch."""
    x = torch.tensor([float('inf'), 1e30, 3e38, 1e20, 2.5, 0.5]).repeat(1, 3, 1)
    p = torch.tensor([1.3, 1.0001, 1.0]).view(1, 3, 1).repeat(1, 1, k)
    if k > 1:  # the values above 1 lie in the last segment; segment 0 gets p < 1
        p[0, :, 0] = torch.tensor([0.7, 1.0001, 1.0])
    g = torch.ones_like(x)
    y, gx, gp = _run(x, p, 1.0, k, g)
    with torch_path:
        y_ref, gx_ref, gp_ref = _run(x, p, 1.0, k, g)
    expected = pow_reference(x.double(), p.double(), 1.0, k, relu=True).float()
    for got in (y, y_ref):  # IEEE results of the exact power, rounded to float32
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)
    assert torch.isinf(y[:, :, 0]).all()  # +inf stays +inf
    assert torch.isinf(y[0, 0, 1]) and torch.isfinite(y[0, 1:, 1]).all()  # 1e30**1.3 overflows
    assert y[0, 1, 2].item() == pytest.approx(3.0267e38, rel=1e-4)  # 3e38**1.0001: not 2**127
    torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=0)
    assert torch.isfinite(gx).all() and gx[0, 2, 0] == 1  # +inf at p = 1: ReLU's gradient
    torch.testing.assert_close(gp, gp_ref, rtol=1e-4, atol=1e-6, equal_nan=True)


def test_kernel_exponent_gradient_never_nan_for_finite_outputs(torch_path):
    """Per-element terms g*y*log2 y beyond float32's range, of both signs: the row sums are
    redone in double instead of giving inf - inf = NaN, in both paths."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 4, 64, generator=gen) * 1e30 + 5e29
    p = torch.full((1, 4, 1), 1.2)  # y ~ 1e36: finite, g*y*log2(y) ~ 1e38-1e39
    g = torch.randn(x.shape, generator=gen)
    for k in (1, 2):
        y, gx, gp = _run(x, p.repeat(1, 1, k), 1.0, k, g)
        with torch_path:
            y_ref, gx_ref, gp_ref = _run(x, p.repeat(1, 1, k), 1.0, k, g)
        assert torch.isfinite(y).all() and torch.isfinite(gx).all()
        assert not torch.isnan(gp).any() and not torch.isnan(gp_ref).any()
        torch.testing.assert_close(gp, gp_ref, rtol=1e-4, atol=0)


# ------------------------------------------------------------------ the cache
# One POW forward that imports only the two modules it needs (so a process starts in
# seconds, not the ~10 s of importing all of fq_det and MMDetection).
_POW_RUN = textwrap.dedent("""
    import importlib.util, sys, types
    import torch
    root = sys.argv[1] + '/fq_det/models/quantizers'
    package = types.ModuleType('quantizers')
    package.__path__ = [root]
    sys.modules['quantizers'] = package
    for name in ('kernels', 'functional'):
        spec = importlib.util.spec_from_file_location('quantizers.' + name, f'{root}/{name}.py')
        sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    functional, kernels = sys.modules['quantizers.functional'], sys.modules['quantizers.kernels']
    x = torch.linspace(-1, 3, 64).view(1, 2, 32) + 0.01
    y = functional.pow_quant(x, torch.full((1, 2, 1), 1.5), 1.0, 1, relu=True)
    ref = x.clamp(min=0) ** 1.5
    assert torch.allclose(y, ref, rtol=1e-5, atol=1e-6), (y - ref).abs().max()
    print('KERNEL', kernels.pow_kernel() is not None)
""")
_REPO = str(Path(__file__).resolve().parents[2])


def _pow_subprocess(cache: Path, cc: str = None, fail_compile: bool = False) -> subprocess.CompletedProcess:
    """One POW forward in a fresh process (a bad library can crash it) using ``cache``; its
    log lines and output are in ``stdout``."""
    env = dict(os.environ, FQ_DET_CACHE=str(cache))
    env.pop('FQ_DET_KERNELS', None)
    if cc:
        env['CC'] = cc
    if fail_compile:
        env['FAKE_CC_FAIL'] = '1'
    return subprocess.run([sys.executable, '-c', _POW_RUN, _REPO], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


@pytest.fixture(scope='module')
def built_cache(tmp_path_factory):
    """``(cache, cc)``: a kernel cache built once by a compiler wrapper that has the real
    compiler's ``--version`` (so the same cache key) and fails when ``FAKE_CC_FAIL`` is set."""
    root = tmp_path_factory.mktemp('kernel-cache')
    real = os.environ.get('CC') or shutil.which('cc') or shutil.which('gcc')
    cc = root / 'cc-wrapper'
    cc.write_text(f'#!/bin/sh\nif [ -n "$FAKE_CC_FAIL" ] && [ "$1" != --version ]; then '
                  f'echo "compiler unavailable" >&2; exit 1; fi\nexec {real} "$@"\n')
    cc.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('FQ_DET_CACHE', str(root / 'cache'))
        mp.setenv('CC', str(cc))
        mp.setattr(kernels, '_tried', False)
        mp.setattr(kernels, '_lib', None)
        assert kernels.pow_kernel() is not None
    return root / 'cache', str(cc)


def _copy_cache(built_cache, tmp_path: Path):
    """A private copy of the built cache and the libraries in it."""
    cache = tmp_path / 'cache'
    shutil.copytree(built_cache[0], cache)
    libs = sorted((cache / 'kernels').glob('pow_kernel-*.so'))
    assert libs
    return cache, built_cache[1], libs


def test_truncated_cached_library_is_rebuilt_not_loaded(built_cache, tmp_path):
    cache, cc, libs = _copy_cache(built_cache, tmp_path)
    for lib in libs:
        lib.write_bytes(lib.read_bytes()[:5000])  # cut short, as by a full disk
    run = _pow_subprocess(cache, cc)
    assert run.returncode == 0, run.stdout  # was: "Bus error" (exit 135)
    assert 'KERNEL True' in run.stdout and 'does not match its record' in run.stdout
    record = json.loads(next((cache / 'kernels').glob('pow_kernel-*.json')).read_text())
    rebuilt = (cache / 'kernels' / record['file']).read_bytes()  # replaced, not patched
    assert len(rebuilt) == record['size'] > 5000
    assert hashlib.sha256(rebuilt).hexdigest() == record['sha256']


def test_truncated_library_without_compiler_falls_back_with_one_warning(built_cache, tmp_path):
    cache, cc, libs = _copy_cache(built_cache, tmp_path)
    for lib in libs:
        lib.write_bytes(lib.read_bytes()[:5000])
    run = _pow_subprocess(cache, cc, fail_compile=True)
    assert run.returncode == 0, run.stdout
    assert 'KERNEL False' in run.stdout  # the torch path, with the right result (asserted inside)
    warnings = [line for line in run.stdout.splitlines() if 'pure-torch path' in line]
    assert len(warnings) == 1 and any(lib.name in warnings[0] for lib in libs), run.stdout


def test_foreign_library_under_the_cached_name_is_not_used(built_cache, tmp_path):
    """A valid shared library that is not ours, even with a matching record, must not crash."""
    cache, cc, libs = _copy_cache(built_cache, tmp_path)
    foreign_src = tmp_path / 'foreign.c'
    foreign_src.write_text('int pow_relu_forward(void) { return 0; }\n')
    foreign = tmp_path / 'foreign.so'
    subprocess.run([cc, '-shared', '-fPIC', str(foreign_src), '-o', str(foreign)], check=True)
    data = foreign.read_bytes()
    for lib in libs:
        lib.write_bytes(data)
    for record_path in (cache / 'kernels').glob('pow_kernel-*.json'):  # a consistent record
        record = json.loads(record_path.read_text())
        record.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        record_path.write_text(json.dumps(record))
    run = _pow_subprocess(cache, cc)
    assert run.returncode == 0, run.stdout
    assert 'KERNEL True' in run.stdout and 'not a POW kernel library' in run.stdout


def test_parallel_first_uses_share_one_verified_library(tmp_path):
    cache = tmp_path / 'cache'
    env = dict(os.environ, FQ_DET_CACHE=str(cache))
    env.pop('FQ_DET_KERNELS', None)
    procs = [subprocess.Popen([sys.executable, '-c', _POW_RUN, _REPO], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0 and 'KERNEL True' in out, out
        assert 'WARNING' not in out, out
    records = list((cache / 'kernels').glob('pow_kernel-*.json'))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert (cache / 'kernels' / record['file']).stat().st_size == record['size']
    assert not list((cache / 'kernels').glob('.build-*'))  # no temporary left behind


def test_no_compiler_is_logged_as_a_warning(monkeypatch):
    """Without a C compiler POW is much slower: say so at WARNING, not in an INFO line."""
    import logging
    logged = []
    monkeypatch.setattr(kernels, '_tried', False)
    monkeypatch.setattr(kernels, '_lib', None)
    monkeypatch.delenv('CC', raising=False)
    monkeypatch.delenv('FQ_DET_KERNELS', raising=False)
    monkeypatch.setattr(kernels.shutil, 'which', lambda name: None)
    monkeypatch.setattr(kernels, 'print_log', lambda msg, **kw: logged.append((msg, kw)))
    assert kernels.pow_kernel() is None
    assert len(logged) == 1 and 'no C compiler found' in logged[0][0]
    assert logged[0][1].get('level') == logging.WARNING
