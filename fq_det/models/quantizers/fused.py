"""The device path: SF, POW and HPOW's pooling as Triton kernels (:mod:`.triton_kernels`).

Each call is a constant number of kernel launches, whatever the tensor's size, with no
host-device synchronisation (no ``.item()``, ``nonzero`` or ``bool`` of a device tensor;
the width, when learnable, is read by the kernels from device memory):

=====================  =======  ========
call                   forward  backward
=====================  =======  ========
POW / HPOW quantizer   1        2 (the input gradient and per-span partial sums of the
                                exponent and width gradients, then their reduction)
SF (with the ReLU)     1        1 (0 without the ReLU: the gradient passes through)
HPOW's mean, its std   1 each   1 (added in place to the quantizer's input gradient)
=====================  =======  ========

It runs on CUDA tensors of float32, float16 and bfloat16 (computed in float32, written in
the input dtype) with ``k <= 64`` when Triton imports (one warning otherwise; the torch path
of :mod:`.functional` runs instead). On CPU tensors it runs only with Triton's interpreter
(``TRITON_INTERPRET=1`` set before Triton is imported) and ``FQ_DET_FUSED_CPU=1``: that is
how the tests check these kernels against the torch path on machines without a GPU.
Tensors ``(N, C, *S)`` whose spatial dims flatten to one stride (contiguous and
channels-last ones) are read and written in place; others are copied contiguous first.
"""
from __future__ import annotations

import logging
import math
import os
from types import ModuleType
from typing import Optional, Tuple

import torch
from torch import Tensor

#: the largest k the backward's per-segment sums are unrolled for (larger k: torch path)
MAX_SPLITS = 64
#: elements per program tile
TILE = 1024
#: spans per (sample, channel block) in backward: bounds the partial sums' buffer
MAX_SPANS = 32
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_kernels: Optional[ModuleType] = None
_tried = False

Strides = Tuple[int, int, int]


def triton_kernels() -> Optional[ModuleType]:
    """The kernels module, or ``None`` (one warning) when Triton cannot be imported."""
    global _kernels, _tried
    if not _tried:
        _tried = True
        try:
            from . import triton_kernels as module
            _kernels = module
        except ImportError as err:
            from mmengine.logging import print_log
            print_log(f'fq_det: Triton is not available ({err}); the quantizers run on the '
                      'slower torch path on this device', logger='current',
                      level=logging.WARNING)
    return _kernels


def applies(t: Tensor, k: int = 1) -> bool:
    """Whether the device path runs for ``t`` (see the module docstring)."""
    if t.dtype not in DTYPES or k > MAX_SPLITS or t.dim() < 2:
        return False
    if t.device.type == 'cpu':
        if os.environ.get('FQ_DET_FUSED_CPU') != '1' or os.environ.get('TRITON_INTERPRET') != '1':
            return False
    elif t.device.type != 'cuda':
        return False
    return triton_kernels() is not None


def layout(t: Tensor) -> Optional[Strides]:
    """``(sn, sc, ss)``: the strides of ``t`` viewed as ``(N, C, S)``, or ``None`` when its
    spatial dims do not flatten to one stride."""
    dims = [(size, stride) for size, stride in zip(t.shape[2:], t.stride()[2:]) if size != 1]
    for (_, outer), (size, inner) in zip(dims[:-1], dims[1:]):
        if outer != inner * size:
            return None
    return t.stride(0), t.stride(1), (dims[-1][1] if dims else 1)


def new_like(t: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    """An uninitialised tensor shaped like ``t``, with its layout where that flattens."""
    if layout(t) is not None:
        return torch.empty_like(t, dtype=dtype)
    return torch.empty(t.shape, dtype=dtype or t.dtype, device=t.device)


def _viewed(t: Tensor) -> Tuple[Tensor, Strides]:
    strides = layout(t)
    if strides is None:
        t = t.contiguous()
        strides = layout(t)
    return t, strides


def _sizes(t: Tensor) -> Tuple[int, int, int]:
    return t.shape[0], t.shape[1], math.prod(t.shape[2:])


def _blocks(strides: Strides, c: int, s: int) -> Tuple[int, int]:
    """``(BC, BS)``: spatially long tiles where space is contiguous, wide ones otherwise."""
    pow2 = _kernels_module().triton.next_power_of_2
    if strides[2] == 1 and s > 1 or strides[1] != 1:
        bs = min(TILE, max(16, pow2(s)))
        return max(2, min(TILE // bs, pow2(c))), bs
    bc = min(64, max(2, pow2(c)))
    return bc, max(2, min(TILE // bc, pow2(s)))


def _kernels_module() -> ModuleType:
    module = triton_kernels()
    assert module is not None, 'the device path runs only where applies() said so'
    return module


def _launch(name: str, kernel, grid, *args, **meta) -> None:
    """Launch one kernel; under ``torch.profiler`` it is recorded as ``triton::<name>``."""
    if torch.autograd._profiler_enabled():
        with torch.profiler.record_function(f'triton::{name}'):
            kernel[grid](*args, **meta)
    else:
        kernel[grid](*args, **meta)


def _width_args(width, dummy: Tensor):
    """``(pointer, value, learnable)`` kernel arguments for a float or 0-dim tensor width."""
    if torch.is_tensor(width):
        return width.detach(), 1.0, True
    return dummy, float(width), False


def _exponents(p: Tensor) -> Tuple[Tensor, int]:
    pc = p.detach()
    pc = (pc if pc.dtype == torch.float32 else pc.float()).contiguous()
    return pc, (0 if p.shape[0] == 1 else p.shape[1] * p.shape[2])


def _clamp_args(clamp: Optional[Tuple[float, float, float]]):
    """Kernel arguments ``(lo, hi, off), CLAMP`` for ``p = off + clamp(p, lo, hi)``."""
    return (tuple(float(v) for v in clamp), True) if clamp is not None else ((0.0, 0.0, 0.0),
                                                                                False)


def pow_forward(x: Tensor, y: Tensor, p: Tensor, width, k: int, relu: bool,
                clamp: Optional[Tuple[float, float, float]] = None) -> None:
    """``y = POW_k(x)`` (of ``max(x, 0)`` with ``relu``); ``y`` may be ``x``. ``clamp``:
    ``(lo, hi, off)``, the exponents are ``off + clamp(p, lo, hi)``."""
    kern = _kernels_module()
    n, c, s = _sizes(x)
    if n * c * s == 0:
        return
    x, xs = _viewed(x)
    ys = layout(y)
    pc, p_sn = _exponents(p)
    w_ptr, w_val, learn = _width_args(width, pc)
    limits, clamped = _clamp_args(clamp)
    bc, bs = _blocks(xs, c, s)
    grid = (kern.triton.cdiv(s, bs), kern.triton.cdiv(c, bc), n)
    _launch('pow_forward', kern.pow_forward_kernel, grid, x, y, pc, w_ptr, w_val, *limits, c, s,
            *xs, *ys, p_sn, K=k, RELU=relu, LEARN_W=learn, CLAMP=clamped, BC=bc, BS=bs)


def pow_backward(y: Tensor, grad: Tensor, p: Tensor, width, k: int, relu: bool, need_x: bool,
                 need_p: bool, need_w: bool, clamp: Optional[Tuple[float, float, float]] = None):
    """``(dL/dx, dL/dp shaped and typed like p, dL/dw)`` from the output ``y``; ``None`` for
    what is not needed. ``clamp`` as for :func:`pow_forward` (``dL/dp``: the raw ``p``'s)."""
    kern = _kernels_module()
    n, c, s = _sizes(y)
    gx = new_like(y, grad.dtype) if need_x else None
    gp = torch.empty(p.shape, dtype=p.dtype, device=y.device) if need_p else None
    gw = torch.empty((), dtype=width.dtype, device=y.device) if need_w else None
    if n * c * s == 0:
        return gx, (gp.zero_() if need_p else None), (gw.zero_() if need_w else None)
    y, ys = _viewed(y)
    grad, gs = _viewed(grad)
    pc, p_sn = _exponents(p)
    w_ptr, w_val, learn = _width_args(width, pc)
    limits, clamped = _clamp_args(clamp)
    bc, bs = _blocks(ys, c, s)
    cdiv = kern.triton.cdiv
    per = cdiv(cdiv(s, bs), MAX_SPANS)
    span = per * bs
    nsb = cdiv(s, span)
    sums = need_p or need_w
    part = torch.empty((n * nsb, c, k + 1) if sums else (1, ), dtype=torch.float64,
                       device=y.device)
    kp2 = max(2, kern.triton.next_power_of_2(k))
    _launch('pow_backward', kern.pow_backward_kernel, (nsb, cdiv(c, bc), n), y, grad,
            gx if need_x else y, part, pc, w_ptr, w_val, *limits, c, s, span, nsb, *ys, *gs,
            *(layout(gx) if need_x else (0, 0, 0)), p_sn, K=k, KP2=kp2, RELU=relu,
            LEARN_W=learn, CLAMP=clamped, NEED_X=need_x, NEED_P=need_p, NEED_W=need_w, BC=bc,
            BS=bs)
    if sums:
        rows = (c if p.shape[0] == 1 else n * c) if need_p else 0
        _launch('pow_reduce', kern.pow_reduce_kernel, (rows + int(need_w), ), part, pc, w_ptr,
                w_val, *limits, gp if need_p else part, gw if need_w else part, n, nsb, c, p_sn,
                K=k, KP2=kp2, SHARED=p.shape[0] == 1, LEARN_W=learn, CLAMP=clamped,
                NEED_P=need_p, BLOCK=32)
    return gx, gp, gw


def sf_forward(x: Tensor, y: Tensor, resolution: float, relu: bool) -> None:
    """``y = floor(r*x)/r`` (ReLU: negative values to ``-0.0``); ``y`` may be ``x``."""
    kern = _kernels_module()
    n, c, s = _sizes(x)
    if n * c * s == 0:
        return
    x, xs = _viewed(x)
    bc, bs = _blocks(xs, c, s)
    grid = (kern.triton.cdiv(s, bs), kern.triton.cdiv(c, bc), n)
    _launch('sf_forward', kern.sf_forward_kernel, grid, x, y, float(resolution), c, s, *xs,
            *layout(y), RELU=relu, BC=bc, BS=bs)


def sf_backward(y: Tensor, grad: Tensor) -> Tensor:
    """``dL/dx``: ``grad`` where the sign bit of ``y`` is clear, else 0."""
    kern = _kernels_module()
    n, c, s = _sizes(y)
    gx = new_like(y, grad.dtype)
    if n * c * s == 0:
        return gx
    y, ys = _viewed(y)
    grad, gs = _viewed(grad)
    bc, bs = _blocks(ys, c, s)
    grid = (kern.triton.cdiv(s, bs), kern.triton.cdiv(c, bc), n)
    _launch('sf_backward', kern.sf_backward_kernel, grid, y, grad, gx, c, s, *ys, *gs,
            *layout(gx), BC=bc, BS=bs)
    return gx


def row_moments(x: Tensor, relu: bool, std: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """Per sample and channel mean of ``z`` (``max(x, 0)`` with ``relu``) over the spatial
    dims and, with ``std``, its standard deviation: float32 ``(N, C)`` tensors."""
    kern = _kernels_module()
    n, c, s = _sizes(x)
    mean = torch.empty((n, c), dtype=torch.float32, device=x.device)
    dev = torch.empty((n, c), dtype=torch.float32, device=x.device) if std else None
    if n * c == 0:
        return mean, dev
    x, xs = _viewed(x)
    bs = max(2, min(TILE, kern.triton.next_power_of_2(max(s, 1))))
    _launch('row_moments', kern.row_moments_kernel, (c, n), x, mean, dev if std else mean, c, s,
            1.0 / max(s, 1), *xs, RELU=relu, STD=std, BS=bs)
    return mean, dev


def add_channel_grad_(gx: Tensor, y: Tensor, grad: Tensor, count: int) -> None:
    """In place ``gx += grad[n, c] / count`` where ``y > 0``; ``gx`` and ``y`` as from
    :func:`pow_backward` (flattening layouts), ``grad`` ``(N, C)``."""
    kern = _kernels_module()
    n, c, s = _sizes(y)
    if n * c * s == 0:
        return
    ys, gxs = layout(y), layout(gx)
    bc, bs = _blocks(ys, c, s)
    grid = (kern.triton.cdiv(s, bs), kern.triton.cdiv(c, bc), n)
    _launch('add_channel_grad', kern.add_channel_grad_kernel, grid, gx, y, grad, 1.0 / count, c,
            s, *gxs, *ys, grad.stride(0), grad.stride(1), BC=bc, BS=bs)
