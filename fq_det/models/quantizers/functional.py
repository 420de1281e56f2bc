"""Fused autograd functions behind the SF, POW and HPOW layers, and POW's pure-torch path.

Why fused: a quantizer placed after a ReLU would naively keep its input *and* its
output alive for backward and run many full-size element-wise passes. Each function
here saves only its **output** ``y`` (the next convolution saves ``y`` anyway, so this
costs no memory) and recomputes everything else in backward from ``y``:

* POW-k (segment ``j``, breakpoint ``b_j = j*w``, ``t = (x - b_j)/w``, ``u = t**p``):
  ``f(x) = b_j + w*t**p`` maps ``[b_j, b_j + w)`` onto itself monotonically, so the
  segment index is ``floor(y/w)`` (clamped to ``k-1``) and ``u = y/w - j``. Then
  ``dy/dx = p*t**(p-1)`` with ``ln t = ln(u)/p``, ``dy/dp = w*u*ln t``,
  ``dy/dw = j*(1 - dy/dx) + u*(1 - p)``, and the ReLU mask is ``y > 0``.
* SF-r: ``y = floor(r*x)/r`` after a ReLU; the ReLU mask cannot be read from ``y``
  (floor sends ``0 < x < 1/r`` to 0), so it is kept in the *sign bit* of ``y``:
  ``x < 0`` gives ``y = -0.0``, ``0 <= x < 1/r`` gives ``y = +0.0``. Both are zero for
  the next layer; backward passes the gradient straight through where the sign bit
  is clear (so exactly at ``x = +0.0`` the gradient is 1, a valid sub-gradient).

The torch path works in row blocks of the ``(N*C, H*W)`` view (about 128k elements each)
so the temporaries stay in cache and no full-size temporary is ever allocated. Half and
bfloat16 inputs (``torch.autocast``) are computed in float32 inside the block.

On CPU, float32, fused with the ReLU and with a fixed width, POW runs in compiled C
kernels (:mod:`.kernels`, one pass per direction); everything else (float64, GPU, autocast
dtypes, a learnable width, no C compiler) takes the torch path here, which is the
reference the kernels are tested against.

Non-finite values follow IEEE arithmetic in both paths: ``+inf`` stays ``+inf``, a power
that overflows gives ``+inf``, NaN stays NaN. Gradients: ``t`` is clamped to ``T_MIN``
(``x = 0``, breakpoints, ``p < 1``) and ``u`` to the dtype's largest finite value inside
the derivatives, so the input gradient is finite for every input but NaN (at
``y = +inf`` it is the derivative at the largest float: 1 for ``p = 1``, like ReLU's; NaN in,
NaN out). Exponent gradients are summed per row in float32 and added up in float64; a
row whose float32 sum is not finite is summed again from float64 products (the width
gradient always is), so for float32 inputs they are finite wherever the outputs they sum
over are finite (``+-inf`` where the exact value exceeds float32's range, never NaN);
for float64 inputs the same holds while ``|g*y*log2(y/w)|`` stays below 1.8e308 (outputs
up to about 1e305). Where an output is ``+inf`` or NaN, the gradients summed over it may
be ``inf`` or NaN.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd import Function

from . import fused, kernels

#: Lower clamp of ``t`` inside derivatives: ``dy/dx <= p * T_MIN**(p-1)`` for ``p < 1``.
T_MIN = 1e-6
#: Inputs below this are treated as 0 in the power: ``log2`` of 0 or of a denormal is
#: ~10x slower than of a normal float, so values are clamped to ``TINY`` first and the
#: log of ``TINY`` is then mapped to ``-inf`` (so the output is exactly 0).
TINY = 1e-30
#: Elements per row block (a few such temporaries stay in the CPU caches).
BLOCK_ELEMS = 1 << 17


def _compute_dtype(t: Tensor) -> torch.dtype:
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _row_blocks(rows: int, cols: int) -> Iterator[Tuple[int, int]]:
    step = max(1, BLOCK_ELEMS // max(cols, 1))
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def _as_rows(t: Tensor) -> Tensor:
    """``(N, C, *S)`` contiguous tensor viewed as ``(N*C, prod(S))`` (also for ``N = 0``)."""
    return t.view(t.shape[0] * t.shape[1], math.prod(t.shape[2:]))


def _row_exponents(p: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """``p`` of shape ``(Np, C, k)`` (``Np`` 1 or ``n``) as a ``(n*C, k)`` row table."""
    _, c, k = p.shape
    return p.to(dtype).expand(n, c, k).reshape(n * c, k)


def _tiny(dtype: torch.dtype) -> Tuple[float, float]:
    """``TINY`` and its ``log2`` exactly as computed in ``dtype``."""
    return TINY, float(torch.tensor(TINY, dtype=dtype).log2())


def _log2_tiny_(a: Tensor, log2_tiny: float) -> Tensor:
    """In place ``log2(a)`` for ``a >= TINY``; entries equal to ``TINY`` become ``-inf``."""
    return torch.nn.functional.threshold_(a.log2_(), log2_tiny, -math.inf)


def _check_pow_inputs(x: Tensor, p: Tensor) -> None:
    if x.dim() < 2:
        raise ValueError(f'POW expects an input of shape (N, C, ...), got {tuple(x.shape)}')
    if p.dim() != 3 or p.shape[1] != x.shape[1] or p.shape[0] not in (1, x.shape[0]):
        raise ValueError(f'exponents must have shape (1 or N, C, num_splits) with C={x.shape[1]}, '
                         f'N={x.shape[0]}; got {tuple(p.shape)}')


class PowQuantFunction(Function):
    """POW-k, optionally fused with the preceding ReLU; saves only its output."""

    @staticmethod
    def forward(ctx, x: Tensor, p: Tensor, width, num_splits: int,  # type: ignore[override]
                relu: bool, inplace: bool, holder: Optional[dict] = None,
                clamp: Optional[Tuple[float, float, float]] = None) -> Tensor:
        _check_pow_inputs(x, p)
        k = int(num_splits)
        if fused.applies(x, k):  # the device path: one kernel, no synchronisation
            in_place = inplace and relu and fused.layout(x) is not None
            y = x if in_place else fused.new_like(x)
            fused.pow_forward(x, y, p, width, k, relu, clamp)
        else:
            in_place, y = _pow_forward_host(x, _clamped(p.detach(), clamp), width, k, relu,
                                            inplace)
        if in_place:
            ctx.mark_dirty(x)
        ctx.k, ctx.relu, ctx.p_shape, ctx.holder, ctx.clamp = k, relu, p.shape, holder, clamp
        ctx.w = None if torch.is_tensor(width) else float(width)
        ctx.save_for_backward(y, p, width if torch.is_tensor(width) else None)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        y, p, width_t = ctx.saved_tensors
        k, relu = ctx.k, ctx.relu
        need_x, need_p, need_w = ctx.needs_input_grad[:3]
        if fused.applies(y, k):
            width = width_t if width_t is not None else ctx.w
            gx, grad_p, grad_w = fused.pow_backward(y, grad, p, width, k, relu, need_x, need_p,
                                                    need_w, ctx.clamp)
        else:
            gx, grad_p, grad_w = _pow_backward_host(ctx, y, grad, _clamped(p.detach(), ctx.clamp),
                                                    width_t, need_x, need_p, need_w)
            if need_p and ctx.clamp is not None:  # torch's clamp: no gradient at the limits
                lo, hi = ctx.clamp[:2]
                grad_p = grad_p * ((p > lo) & (p < hi))
        if ctx.holder is not None and need_x:
            ctx.holder['grad_x'] = gx  # ReLUMeanFunction adds its term here, in place
        return (gx if need_x else None), grad_p, grad_w, None, None, None, None, None


def _clamped(p: Tensor, clamp: Optional[Tuple[float, float, float]]) -> Tensor:
    """``off + clamp(p, lo, hi)`` for ``clamp = (lo, hi, off)``; ``p`` itself for ``None``."""
    return p if clamp is None else p.clamp(clamp[0], clamp[1]) + clamp[2]


def _pow_forward_host(x: Tensor, p: Tensor, width, k: int, relu: bool,
                      inplace: bool) -> Tuple[bool, Tensor]:
    """``(in place, y)`` on the compiled CPU kernel or the torch path."""
    w = float(width)
    cdt = _compute_dtype(x)
    in_place = inplace and relu and x.is_contiguous()
    xc = x.contiguous()
    y = x if in_place else torch.empty_like(xc)
    x2, y2 = _as_rows(xc), _as_rows(y)
    prow = _row_exponents(p.detach(), x.shape[0], cdt)
    identity = bool((prow == 1).all())  # fresh alpha: exactly the identity (bit-exact)
    lib = None if identity else kernels.kernel_for(xc, width, k, relu)
    if lib is not None:
        kernels.forward(lib, x2, y2, prow, k, w)
    else:
        _pow_forward_torch(x2, y2, prow, k, w, relu, in_place, identity, cdt)
    return in_place, y


def _pow_backward_host(ctx, y: Tensor, grad: Tensor, p: Tensor, width_t: Optional[Tensor],
                       need_x: bool, need_p: bool, need_w: bool):
    """``(dL/dx, dL/dp, dL/dw)`` on the compiled CPU kernel or the torch path."""
    k, relu = ctx.k, ctx.relu
    w = ctx.w if width_t is None else float(width_t)
    n, c = y.shape[:2]
    lib = kernels.kernel_for(y, width_t if width_t is not None else w, k, relu)
    if lib is not None and grad.dtype == torch.float32:
        prow = _row_exponents(p.detach(), n, torch.float32)
        gx2, dp = kernels.backward(lib, _as_rows(y), _as_rows(grad.contiguous()), prow, k, w,
                                   need_p)
        gx, dw = gx2.view(y.shape), None
    else:
        gx, dp, dw = _pow_backward_torch(y, grad, p, k, w, relu, need_x, need_p, need_w)
    grad_p = None
    if need_p:  # dp: (n*C, k) float64
        dp = dp.view(n, c, k)
        if ctx.p_shape[0] == 1:
            dp = dp.sum(0, keepdim=True)
        grad_p = dp.to(p.dtype)
    grad_w = dw.to(width_t.dtype) if need_w else None
    return gx, grad_p, grad_w


def _pow_forward_torch(x2: Tensor, y2: Tensor, prow: Tensor, k: int, w: float, relu: bool,
                       in_place: bool, identity: bool, cdt: torch.dtype) -> None:
    """``y2 = POW_k(x2)`` (of ``max(x2, 0)`` with ``relu``) in row blocks; ``y2`` may be ``x2``."""
    tiny, log2_tiny = _tiny(cdt)
    for r0, r1 in _row_blocks(*x2.shape):
        xs = x2[r0:r1]
        direct = in_place and xs.dtype == cdt  # work on x itself
        if identity:
            a = (xs.clamp_(min=0) if direct else xs.to(cdt, copy=True).clamp_(min=0)) \
                if relu else xs.to(cdt, copy=True)
        else:
            if relu:
                a = xs if direct else xs.to(cdt, copy=True)
            else:
                a = xs.to(cdt).abs()
            if w != 1.0:
                a.div_(w)
            pr = prow[r0:r1]
            if k == 1:  # t**p = exp2(p * log2 t): vectorised, ~2x faster than pow
                _log2_tiny_(a.clamp_(min=tiny), log2_tiny).mul_(pr).exp2_()
            else:
                j = a.clamp_(min=0).floor().clamp_(max=k - 1)
                pe = torch.gather(pr, 1, j.long().clamp_(0, k - 1))  # NaN -> any index
                _log2_tiny_(a.sub_(j).clamp_(min=tiny), log2_tiny).mul_(pe).exp2_().add_(j)
            if w != 1.0:
                a.mul_(w)
        if not relu:
            a.copysign_(xs)
        if not direct:
            y2[r0:r1].copy_(a)


def _pow_backward_torch(y: Tensor, grad: Tensor, p: Tensor, k: int, w: float, relu: bool,
                        need_x: bool, need_p: bool, need_w: bool):
    """``(dL/dx, dL/dp per row (N*C, k) in float64, dL/dw)`` from the output ``y``."""
    cdt = _compute_dtype(y)
    y2, g2 = _as_rows(y), _as_rows(grad.contiguous())
    prow = _row_exponents(p.detach(), y.shape[0], cdt)
    pow1 = _pow1_tables(prow) if k == 1 else None
    gx = torch.empty_like(y, dtype=grad.dtype) if need_x else None
    gx2 = _as_rows(gx) if need_x else None
    direct_out = need_x and gx.dtype == cdt
    dp = torch.zeros(y2.shape[0], k, dtype=torch.float64, device=y.device) if need_p else None
    dw = torch.zeros((), dtype=torch.float64, device=y.device) if need_w else None
    for r0, r1 in _row_blocks(*y2.shape):
        yc, gc = y2[r0:r1].to(cdt), g2[r0:r1].to(cdt)  # may be views: read-only
        if relu:  # y >= 0 (a -0.0 is harmless: its log is clamped, u * log t -> 0)
            a = yc / w if w != 1.0 else yc  # read-only below when it is yc
        else:
            a = yc.abs().div_(w) if w != 1.0 else yc.abs()
        if k == 1:
            dp_block, dw_block, d = _pow1_block_grads(yc, gc, a, prow[r0:r1],
                                                      [t[r0:r1] for t in pow1], relu, need_p,
                                                      need_w, need_x)
        else:
            dp_block, dw_block, d = _segment_block_grads(yc, gc, a, prow[r0:r1], k, relu, need_p,
                                                         need_w, need_x)
        if need_p:
            dp[r0:r1] += dp_block
        if need_w:
            dw += dw_block
        if need_x:
            _store_input_grad(d, yc, gx2[r0:r1], relu, direct_out)
    if need_p:
        _finish_exponent_grad(dp, y2, g2, prow, k, w, relu, cdt)
    return gx, dp, dw


def _pow1_tables(prow: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-row constants of POW-1's backward: the lower clamp of ``u``, the exponent
    ``(p-1)/p`` of ``dy/dx = p * u**((p-1)/p)`` and ``log2 p``."""
    umin = torch.exp2(prow * math.log2(T_MIN))  # u >= T_MIN**p (>= 1e-30: fast log)
    e_row = (prow - 1) / prow  # dy/dx = p * u**((p-1)/p)
    lp_row = prow.log2()
    return umin, e_row, lp_row


def _pow1_block_grads(yc: Tensor, gc: Tensor, u: Tensor, pr: Tensor, tables: Sequence[Tensor],
                      relu: bool, need_p: bool, need_w: bool, need_x: bool):
    """One row block of POW-1 (``u = a``, one segment; ``tables``: the block's rows of
    :func:`_pow1_tables`): ``(exponent sums (rows, 1) before the factor ln2/p, width
    gradient, g * dy/dx)``, each ``None`` where not needed."""
    umin, e_row, lp_row = tables
    big = torch.finfo(yc.dtype).max  # u = +inf (y = +inf) is clamped here inside the derivatives
    l2 = torch.clamp(u, min=umin).clamp_(max=big).log2_()  # log2 u, finite
    dp = dw = d = None
    if need_p:  # dy/dp = s*w*u*ln t = y * ln(u) / p: divide by p after the sum
        dp = torch.mul(gc, yc).mul_(l2).sum(1).unsqueeze_(1)
    if need_w:
        dw = _width_grad_block(gc, yc, u, pr, None, None, relu)
    if need_x:
        d = l2.mul_(e_row).add_(lp_row).exp2_().mul_(gc)
    return dp, dw, d


def _segment_block_grads(yc: Tensor, gc: Tensor, a: Tensor, pr: Tensor, k: int, relu: bool,
                         need_p: bool, need_w: bool, need_x: bool):
    """One row block of POW-k, k > 1 (segment ``j = floor(a)``, ``u = a - j``): ``(exponent
    sums per segment (rows, k) before the factor w*ln2, width gradient, g * dy/dx)``."""
    big = torch.finfo(yc.dtype).max
    j = a.floor().clamp_(0, k - 1)
    jl = torch.nan_to_num(j, nan=0.0).long()  # a NaN output: its NaN term to segment 0
    u = a - j
    pe = torch.gather(pr, 1, jl)
    l2 = torch.clamp(u, min=TINY, max=big).log2_().div_(pe).clamp_(min=math.log2(T_MIN))  # log2 t
    dp = dw = d = None
    if need_p:  # dy/dp = s*w*u*ln t, scattered to the segment's exponent
        v = torch.mul(gc, u).mul_(l2)
        if not relu:
            v.mul_(torch.sign(yc))
        dp = torch.zeros(yc.shape[0], k, dtype=yc.dtype, device=yc.device).scatter_add_(1, jl, v)
    if need_w:
        dw = _width_grad_block(gc, yc, u, pe, j, l2, relu)
    if need_x:  # p * t**(p-1)
        d = l2.mul_(pe.sub_(1)).exp2_().mul_(pe.add_(1)).mul_(gc)
    return dp, dw, d


def _store_input_grad(d: Tensor, yc: Tensor, out: Tensor, relu: bool, direct_out: bool) -> None:
    """Write ``d`` into the rows ``out`` of ``dL/dx``, zeroed where ``y <= 0`` with the ReLU."""
    if relu and direct_out:
        torch.ops.aten.threshold_backward.grad_input(d, yc, 0, grad_input=out)
    elif relu:
        out.copy_(torch.ops.aten.threshold_backward(d, yc, 0))
    else:
        out.copy_(d)


def _finish_exponent_grad(dp: Tensor, y2: Tensor, g2: Tensor, prow: Tensor, k: int, w: float,
                          relu: bool, cdt: torch.dtype) -> None:
    """In place: rows whose float32 sums overflowed summed again in float64, then the
    constant factor (``ln2/p`` for k = 1, ``w*ln2`` otherwise)."""
    if cdt != torch.float64:
        rows = (~torch.isfinite(dp)).any(1).nonzero().flatten()  # rare: a sum overflowed
        if rows.numel():
            dp[rows] = _exponent_grad_f64(y2[rows], g2[rows], prow[rows], k, w, relu)
    dp.mul_(math.log(2) / prow.to(torch.float64) if k == 1 else w * math.log(2))


def _exponent_grad_f64(y: Tensor, g: Tensor, prow: Tensor, k: int, w: float, relu: bool) -> Tensor:
    """The sums of the backward's exponent terms per row and segment, ``(rows, k)``, from
    products and sums in float64, for rows whose float32 sum is not finite: finite outputs
    then never give ``inf - inf = NaN``. The clamps are the float32 computation's."""
    big = torch.finfo(torch.float32).max
    y, g, prow = y.to(torch.float64), g.to(torch.float64), prow.to(torch.float64)
    a = y.abs() / w
    if k == 1:  # g * y * log2 u
        umin = torch.exp2(prow * math.log2(T_MIN)).clamp_(min=TINY)
        return (g * y * torch.clamp(a, min=umin).clamp_(max=big).log2_()).sum(1, keepdim=True)
    j = a.floor().clamp_(0, k - 1)
    jl = j.nan_to_num(0).long()
    u = a - j
    l2 = torch.clamp(u, min=TINY, max=big).log2_().div_(torch.gather(prow, 1, jl))
    terms = g * u * l2.clamp_(min=math.log2(T_MIN))
    if not relu:
        terms.mul_(torch.sign(y))
    sums = torch.zeros(y.shape[0], k, dtype=torch.float64, device=y.device)
    return sums.scatter_add_(1, jl, terms)


def _width_grad_block(g: Tensor, y: Tensor, u: Tensor, pe: Tensor, j: Optional[Tensor],
                      l2: Optional[Tensor], relu: bool) -> Tensor:
    """``sum(g * dy/dw)`` in float64, ``dy/dw = s*(j*(1 - p*t**(p-1)) + u*(1 - p))``
    (``l2 = log2 t``; ``j = None`` for k = 1)."""
    f64 = torch.float64
    val = u.to(f64) * (1 - pe.to(f64))
    if j is not None:
        d = torch.exp2(l2.to(f64) * (pe.to(f64) - 1)) * pe.to(f64)
        val += j.to(f64) * (1 - d)
    if relu:
        val.masked_fill_(y <= 0, 0)
    else:
        val.mul_(torch.sign(y))
    return val.mul_(g).sum()


def pow_quant(x: Tensor,
              p: Tensor,
              width=1.0,
              num_splits: int = 1,
              relu: bool = False,
              inplace: bool = False,
              holder: Optional[dict] = None,
              clamp: Optional[Tuple[float, float, float]] = None) -> Tensor:
    """POW-k of ``x`` (channel dim 1) with exponents ``p`` of shape ``(1 or N, C, k)``.

    ``f(x) = b_j + w*((x - b_j)/w)**p_cj`` on segment ``j`` (``b_j = j*w``, last segment
    unbounded), ``f(-x) = -f(x)``; with ``relu=True`` computes ``f(max(x, 0))``.
    ``width`` is a float, or a 0-dim tensor when the width is learnable. ``holder``: see
    :func:`relu_mean`. ``clamp = (lo, hi, off)``: the exponents are
    ``off + clamp(p, lo, hi)`` (computed inside the kernels on the device path; the gradient
    is ``p``'s, 0 at and beyond the limits, as torch's clamp gives it).
    """
    return PowQuantFunction.apply(x, p, width, num_splits, relu, inplace, holder, clamp)


class SFQuantFunction(Function):
    """SF-r ``y = floor(r*x)/r``, straight-through gradient; with ``relu`` the ReLU mask
    lives in the sign bit of ``y`` (nothing but ``y`` is saved)."""

    @staticmethod
    def forward(ctx, x: Tensor, resolution: float, relu: bool,
                inplace: bool) -> Tensor:  # type: ignore[override]
        r = float(resolution)
        if fused.applies(x):
            in_place = inplace and fused.layout(x) is not None
            y = x if in_place else fused.new_like(x)
            fused.sf_forward(x, y, r, relu)
        else:
            in_place, y = _sf_forward_torch(x, r, relu, inplace)
        if in_place:
            ctx.mark_dirty(x)
        ctx.relu = relu
        if relu:
            ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        if not ctx.relu:
            return grad, None, None, None
        (y, ) = ctx.saved_tensors
        if fused.applies(y):
            return fused.sf_backward(y, grad), None, None, None
        return _sf_backward_torch(y, grad), None, None, None


def _sf_forward_torch(x: Tensor, r: float, relu: bool, inplace: bool) -> Tuple[bool, Tensor]:
    """``(in place, y)``: SF-r in row blocks (see :class:`SFQuantFunction`)."""
    cdt = _compute_dtype(x)
    in_place = inplace and x.is_contiguous()
    xc = x.contiguous()
    y = x if in_place else torch.empty_like(xc)
    x2 = xc.view(1, -1) if xc.dim() < 2 else _as_rows(xc)
    y2 = y.view(1, -1) if y.dim() < 2 else _as_rows(y)
    for r0, r1 in _row_blocks(*x2.shape):
        xs = x2[r0:r1]
        direct = in_place and xs.dtype == cdt
        a = xs if direct else xs.to(cdt, copy=True)
        a.mul_(r).floor_()
        if relu:
            a.clamp_(min=-0.0)  # negative -> -0.0 (mask bit), [0, 1/r) -> +0.0
        a.div_(r)
        if not direct:
            y2[r0:r1].copy_(a)
    return in_place, y


def _sf_backward_torch(y: Tensor, grad: Tensor) -> Tensor:
    """SF's input gradient with the ReLU mask read from the sign bits of ``y``."""
    gx = torch.empty_like(y, dtype=grad.dtype)
    one = torch.ones((), dtype=y.dtype, device=y.device)
    y2 = y.view(1, -1) if y.dim() < 2 else _as_rows(y)
    g2 = grad.contiguous().view(y2.shape)
    gx2 = gx.view(y2.shape)
    for r0, r1 in _row_blocks(*y2.shape):
        # copysign(1, y) is -1 exactly where the sign bit (the ReLU mask) is set
        sign = torch.copysign(one, y2[r0:r1])
        if g2.dtype == y2.dtype:
            torch.ops.aten.threshold_backward.grad_input(g2[r0:r1],
                                                         sign,
                                                         0,
                                                         grad_input=gx2[r0:r1])
        else:
            gx2[r0:r1].copy_(g2[r0:r1] * (sign > 0))
    return gx


def sf_quant(x: Tensor, resolution: float, relu: bool = False, inplace: bool = False) -> Tensor:
    """SF-r ``y = floor(r*x)/r`` (``relu=True``: of ``max(x, 0)``), gradient straight through."""
    return SFQuantFunction.apply(x, resolution, relu, inplace)


class ReLUMeanFunction(Function):
    """Per-sample, per-channel mean of ``max(x, 0)`` over the spatial dims, saving nothing.

    Backward needs the ReLU mask ``x > 0``; it reads it from the fused quantizer's output
    ``y`` (``y > 0`` iff ``x > 0``), which the caller stores in ``holder['out']`` after the
    quantizer ran (detached, so no reference cycle). The quantizer's backward always runs
    first (its exponents depend on this mean) and leaves its ``grad_x`` in the holder; this
    backward then adds ``dL/dmean / HW * mask`` to it in place and returns nothing, which
    saves autograd a full-size sum of the two gradients. The holder lives as long as the
    graph does (HPOW keeps its last alpha's graph only with a regulariser in training).
    """

    @staticmethod
    def forward(ctx, x: Tensor, holder: dict) -> Tensor:  # type: ignore[override]
        count = max(1, math.prod(x.shape[2:]))
        ctx.holder, ctx.count = holder, count
        if fused.applies(x):
            return fused.row_moments(x, relu=True, std=False)[0]
        cdt = _compute_dtype(x)
        x2 = _as_rows(x.contiguous())
        total = torch.empty(x2.shape[0], dtype=cdt, device=x.device)
        for r0, r1 in _row_blocks(*x2.shape):  # no full-size temporary
            total[r0:r1] = x2[r0:r1].to(cdt).clamp(min=0).sum(1)
        return total.div_(count).view(x.shape[:2])

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        out = ctx.holder.get('out')
        if out is None:
            raise RuntimeError('ReLUMeanFunction: the fused quantizer output was not provided '
                               'in holder["out"]')
        gx = ctx.holder.pop('grad_x', None)
        if fused.applies(out) and gx is not None and gx.shape == out.shape \
                and fused.layout(gx) is not None and fused.layout(out) is not None:
            fused.add_channel_grad_(gx, out, grad, ctx.count)
            return None, None
        g = (grad / ctx.count).to(out.dtype).reshape(-1, 1)
        if gx is not None and gx.is_contiguous() and gx.shape == out.shape and out.is_contiguous():
            gx2, y2 = _as_rows(gx), _as_rows(out)
            for r0, r1 in _row_blocks(*y2.shape):
                term = torch.ops.aten.threshold_backward(g[r0:r1].expand(r1 - r0, y2.shape[1]),
                                                         y2[r0:r1], 0)
                gx2[r0:r1].add_(term.to(gx.dtype))
            return None, None
        g = g.view(*out.shape[:2], *([1] * (out.dim() - 2))).expand_as(out)
        return torch.ops.aten.threshold_backward(g, out, 0), None  # g where out > 0


def relu_mean(x: Tensor, holder: dict) -> Tensor:
    """``mean(max(x, 0))`` over spatial dims; see :class:`ReLUMeanFunction` for ``holder``."""
    return ReLUMeanFunction.apply(x, holder)


def channel_std(x: Tensor, relu: bool = False) -> Tensor:
    """Per sample and channel standard deviation ``sqrt(mean((z - mean z)**2))`` of
    ``z = x`` (``max(x, 0)`` with ``relu``) over the spatial dims, ``(N, C)``, as a constant
    (no gradient), in row blocks (no full-size temporary); zeros for a 2-D input."""
    cdt = _compute_dtype(x)
    n, c = x.shape[:2]
    with torch.no_grad():
        if x.dim() == 2:
            return torch.zeros(n, c, dtype=cdt, device=x.device)
        if fused.applies(x):
            return fused.row_moments(x, relu=relu, std=True)[1]
        x2 = _as_rows(x.contiguous())
        out = torch.empty(x2.shape[0], dtype=cdt, device=x.device)
        for r0, r1 in _row_blocks(*x2.shape):
            block = x2[r0:r1].to(cdt)
            block = block.clamp(min=0) if relu else block
            out[r0:r1] = torch.var(block, dim=1, correction=0).sqrt_()
        return out.view(n, c)
