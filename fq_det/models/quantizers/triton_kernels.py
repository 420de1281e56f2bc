"""Triton kernels of the device path (:mod:`.fused`): POW-k, SF-r and HPOW's pooling.

Imported only when the device path first runs (so importing ``fq_det`` never imports
Triton). Every kernel addresses an ``(N, C, S)`` view of its tensors through the strides
``(sn, sc, ss)`` (``S`` the flattened spatial size), so contiguous and channels-last inputs
are read in place. A program covers one sample ``n`` (grid axis 2), a block of ``BC``
channels (axis 1) and ``BS`` (or, in backward, a span of) spatial positions (axis 0).
Everything is computed in float32 registers and stored in the tensor's dtype, so
float16 / bfloat16 overflow to ``inf`` exactly where the float32 value exceeds the dtype.

The maths is the torch path's (:mod:`.functional`), element by element:

* forward: ``a = max(x, 0)/w`` (``|x|/w`` without the ReLU), ``j = min(floor(a), k-1)``,
  ``u = a - j``, ``y = w*(j + exp2(p_j*log2 u))`` (0 where ``u <= TINY``; ``+inf`` stays
  ``+inf``, NaN stays NaN, ``p_j = 1`` gives the input bit-exactly; the sign of ``x``
  restored without the ReLU);
* backward: from ``y`` alone, ``l2 = log2 t = log2(clamp(u))/p_j`` clamped to ``log2 T_MIN``,
  ``dL/dx = g*p_j*exp2(l2*(p_j-1))`` (0 where the ReLU blocked, NaN where ``y`` is NaN),
  exponent terms ``g*u*l2`` (``k = 1``: ``g*y*log2 u``) summed per channel and segment in
  float32 per chunk of ``BC x BS`` elements, accumulated in float64; a chunk whose float32
  sums are not all finite is summed again from float64 products (finite outputs never give
  ``inf - inf = NaN``). A NaN output adds a NaN term to segment 0. The per-span partial sums
  are added up (over spans, and over the batch for shared exponents) and scaled by
  :func:`pow_reduce_kernel`.
"""
from __future__ import annotations

import math

import triton
import triton.language as tl

TINY = tl.constexpr(1e-30)
LOG2_TMIN = tl.constexpr(math.log2(1e-6))
FLT_MAX = tl.constexpr(3.4028234663852886e38)
LN2 = tl.constexpr(math.log(2.0))


@triton.jit
def _tile(C, S, BC: tl.constexpr, BS: tl.constexpr):
    """Channel and spatial indices (int64) of this program's tile and its mask."""
    c = tl.program_id(1) * BC + tl.arange(0, BC)
    s = tl.program_id(0) * BS + tl.arange(0, BS)
    mask = (c < C)[:, None] & (s < S)[None, :]
    return c.to(tl.int64), s.to(tl.int64), mask


@triton.jit
def _width(w_ptr, w_val, LEARN_W: tl.constexpr):
    if LEARN_W:
        w = tl.load(w_ptr).to(tl.float32)
    else:
        w = w_val
    return w


@triton.jit
def _cast_for(v, ptr):
    """float32 ``v`` in the element type of ``ptr``, rounded to nearest even (bfloat16 by
    hand: Triton's interpreter truncates it, the GPU rounds; this is torch's rounding)."""
    if ptr.dtype.element_ty == tl.bfloat16:
        bits = v.to(tl.int32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        bits = tl.where(v != v, 0x7FC0, bits)
        out = bits.to(tl.int16).to(tl.bfloat16, bitcast=True)
    else:
        out = v.to(ptr.dtype.element_ty)
    return out


@triton.jit
def _exponent(raw, lo, hi, off, CLAMP: tl.constexpr):
    """``p = off + clamp(raw, lo, hi)`` (NaN stays NaN) with ``CLAMP``, else ``raw``."""
    if CLAMP:
        raw = tl.where(raw < lo, lo, tl.where(raw > hi, hi, raw)) + off
    return raw


@triton.jit
def _copysign(v, x):
    """``|v|`` with the sign bit of ``x`` (``v >= 0`` or NaN), float32."""
    sign = x.to(tl.int32, bitcast=True) & (-2147483648)
    return (v.to(tl.int32, bitcast=True) | sign).to(tl.float32, bitcast=True)


@triton.jit
def pow_forward_kernel(x_ptr, y_ptr, p_ptr, w_ptr, w_val, lo, hi, off, C, S, x_sn, x_sc, x_ss,
                       y_sn, y_sc, y_ss, p_sn, K: tl.constexpr, RELU: tl.constexpr,
                       LEARN_W: tl.constexpr, CLAMP: tl.constexpr, BC: tl.constexpr,
                       BS: tl.constexpr):
    n = tl.program_id(2).to(tl.int64)
    c, s, mask = _tile(C, S, BC, BS)
    x = tl.load(x_ptr + n * x_sn + c[:, None] * x_sc + s[None, :] * x_ss, mask=mask,
                other=0.0).to(tl.float32)
    w = _width(w_ptr, w_val, LEARN_W)
    if RELU:
        a = x / w
        same = tl.where(x < 0, 0.0, x)  # the identity's output (p = 1)
    else:
        a = tl.abs(x) / w
        same = x
    p_row = p_ptr + n * p_sn + c[:, None] * K
    if K == 1:
        pe = tl.load(p_row, mask=(c < C)[:, None], other=1.0).to(tl.float32)
        pe = _exponent(pe, lo, hi, off, CLAMP)
        ac = tl.where(a > TINY, a, TINY)
        t = tl.exp2(pe * tl.log2(ac))
        t = tl.where(a > TINY, t, 0.0)
        t = tl.where(a == float('inf'), a, t)
        out = w * t
    else:
        a0 = tl.where(a > 0, a, 0.0)
        j = tl.floor(a0)
        j = tl.where(j < K - 1, j, K - 1.0)
        u = a0 - j
        pe = tl.load(p_row + j.to(tl.int32), mask=mask, other=1.0).to(tl.float32)
        pe = _exponent(pe, lo, hi, off, CLAMP)
        uc = tl.where(u > TINY, u, TINY)
        t = tl.exp2(pe * tl.log2(uc))
        t = tl.where(u > TINY, t, 0.0)
        t = tl.where(u == float('inf'), u, t)
        out = w * (j + t)
    if not RELU:
        out = _copysign(out, x)
    out = tl.where(pe == 1.0, same, out)
    out = tl.where(x != x, x, out)  # NaN stays NaN
    tl.store(y_ptr + n * y_sn + c[:, None] * y_sc + s[None, :] * y_ss,
             _cast_for(out, y_ptr), mask=mask)


@triton.jit
def _segment_sums(term, ji, KP2: tl.constexpr, K: tl.constexpr):
    """``(BC, KP2)`` sums of ``term`` over the tile's spatial axis, per segment ``ji``."""
    kk = tl.arange(0, KP2)
    if K == 1:
        out = tl.where(kk[None, :] == 0, tl.sum(term, axis=1)[:, None], 0.0)
    else:
        out = tl.zeros([term.shape[0], KP2], term.dtype)
        for jj in tl.static_range(K):
            part = tl.sum(tl.where(ji == jj, term, 0.0), axis=1)
            out += tl.where(kk[None, :] == jj, part[:, None], 0.0)
    return out


@triton.jit
def _pow1_channel_constants(p_row, cm, lo, hi, off, CLAMP: tl.constexpr):
    """POW-1's per-channel constants in backward: the exponent ``p``, the lower clamp
    ``max(T_MIN**p, TINY)`` of ``u``, ``(p-1)/p`` and ``log2 p``."""
    pe1 = tl.load(p_row, mask=cm[:, None], other=1.0).to(tl.float32)
    pe1 = _exponent(pe1, lo, hi, off, CLAMP)
    umin = tl.exp2(pe1 * LOG2_TMIN)
    umin = tl.where(umin > TINY, umin, TINY)
    e_row = (pe1 - 1.0) / pe1
    lp_row = tl.log2(pe1)
    return pe1, umin, e_row, lp_row


@triton.jit
def _magnitude_and_sign(y, w, RELU: tl.constexpr):
    """``a = y/w`` (``|y|/w`` without the ReLU) and the sign ``s`` of ``y`` (0 or 1 with the
    ReLU, where ``y > 0`` is its mask)."""
    if RELU:
        a = y / w
        sgn = tl.where(y > 0, 1.0, 0.0)
    else:
        a = tl.abs(y) / w
        sgn = tl.where(y > 0, 1.0, tl.where(y < 0, -1.0, 0.0))
    return a, sgn


@triton.jit
def _pow1_terms(y, g, a, umin, e_row, lp_row):
    """POW-1 (``u = a``, segment 0): ``(j, j as int, u, log2 u, exponent term g*y*log2 u,
    dy/dx = p * t**(p-1))``."""
    j = tl.zeros_like(a)
    ji = j.to(tl.int32)
    u = a
    uc = tl.where(u > umin, u, umin)
    uc = tl.where(uc < FLT_MAX, uc, FLT_MAX)  # y = +inf: the derivative at FLT_MAX
    l2 = tl.log2(uc)  # log2 u = p * log2 t
    term = g * y * l2  # times ln2 / p in pow_reduce_kernel
    d = tl.exp2(l2 * e_row + lp_row)  # p * t**(p-1)
    return j, ji, u, l2, term, d


@triton.jit
def _segment_terms(g, a, sgn, p_row, mask, lo, hi, off, K: tl.constexpr, RELU: tl.constexpr,
                   CLAMP: tl.constexpr):
    """POW-k, k > 1 (segment ``j = min(floor(a), k-1)``, ``u = a - j``): ``(p_j, j, j as int,
    u, log2 t, exponent term s*g*u*log2 t, dy/dx = p_j * t**(p_j-1))``."""
    a0 = tl.where(a > 0, a, 0.0)
    j = tl.floor(a0)
    j = tl.where(j < K - 1, j, K - 1.0)
    ji = j.to(tl.int32)
    u = a0 - j
    u = tl.where(a != a, a, u)  # a NaN output: a NaN term in segment 0
    pe = tl.load(p_row + ji, mask=mask, other=1.0).to(tl.float32)
    pe = _exponent(pe, lo, hi, off, CLAMP)
    uc = tl.where(u > TINY, u, TINY)
    uc = tl.where(uc < FLT_MAX, uc, FLT_MAX)
    l2 = tl.log2(uc) / pe
    l2 = tl.where(l2 > LOG2_TMIN, l2, LOG2_TMIN)  # log2 t
    term = g * u * l2
    if not RELU:
        term = term * sgn
    d = pe * tl.exp2(l2 * (pe - 1.0))
    return pe, j, ji, u, l2, term, d


@triton.jit
def _input_grad(d, g, y, RELU: tl.constexpr):
    """``dL/dx = g * dy/dx``: 0 where the ReLU blocked, NaN where ``y`` is NaN."""
    gx = d * g
    if RELU:
        gx = tl.where(y > 0, gx, tl.where(y == y, 0.0, y))
    else:
        gx = tl.where(y == y, gx, y)
    return gx


@triton.jit
def _add_exponent_terms(acc, term, g, y, u, l2, sgn, ji, mask, KP2: tl.constexpr,
                        K: tl.constexpr, RELU: tl.constexpr):
    """``acc`` plus this chunk's exponent terms per channel and segment, summed in float32;
    a chunk whose float32 sums are not all finite is summed again from float64 products."""
    term = tl.where(mask, term, 0.0)
    sums = _segment_sums(term, ji, KP2, K)
    nbad = tl.sum(tl.sum(tl.where(tl.abs(sums) <= FLT_MAX, 0, 1), axis=1), axis=0)
    if nbad > 0:  # rare: redo this chunk from float64 products
        if K == 1:
            t64 = g.to(tl.float64) * y.to(tl.float64) * l2.to(tl.float64)
        else:
            t64 = g.to(tl.float64) * u.to(tl.float64) * l2.to(tl.float64)
            if not RELU:
                t64 = t64 * sgn.to(tl.float64)
        acc += _segment_sums(tl.where(mask, t64, 0.0), ji, KP2, K)
    else:
        acc += sums.to(tl.float64)
    return acc


@triton.jit
def _add_width_terms(wacc, u, pe, j, d, y, g, sgn, mask, K: tl.constexpr, RELU: tl.constexpr):
    """``wacc`` plus this chunk's ``sum g * s*(j*(1 - dy/dx) + u*(1 - p))`` per channel,
    products in float64."""
    val = u.to(tl.float64) * (1.0 - pe.to(tl.float64))
    if K > 1:
        val += j.to(tl.float64) * (1.0 - d.to(tl.float64))
    if RELU:
        val = tl.where(y <= 0, 0.0, val)
    else:
        val = val * sgn.to(tl.float64)
    wacc += tl.sum(tl.where(mask, val * g.to(tl.float64), 0.0), axis=1)
    return wacc


@triton.jit
def _store_partials(part_ptr, acc, wacc, n, sb, NSB, C, c, cm, K: tl.constexpr,
                    KP2: tl.constexpr, NEED_P: tl.constexpr, NEED_W: tl.constexpr):
    """The span's partial sums into ``part[(n*NSB + sb), c]``: columns ``0..K-1`` the
    exponent terms (``NEED_P``), column ``K`` the width terms (``NEED_W``). Without either,
    ``part`` is a one-element placeholder and nothing is stored."""
    kk = tl.arange(0, KP2)
    base = part_ptr + ((n * NSB + sb) * C + c[:, None]) * (K + 1)
    if NEED_P:
        tl.store(base + kk[None, :], acc, mask=cm[:, None] & (kk < K)[None, :])
    if NEED_W:
        tl.store(base + K, wacc[:, None], mask=cm[:, None])


@triton.jit
def pow_backward_kernel(y_ptr, g_ptr, gx_ptr, part_ptr, p_ptr, w_ptr, w_val, lo, hi, off, C, S,
                        SPAN, NSB, y_sn, y_sc, y_ss, g_sn, g_sc, g_ss, gx_sn, gx_sc, gx_ss, p_sn,
                        K: tl.constexpr, KP2: tl.constexpr, RELU: tl.constexpr,
                        LEARN_W: tl.constexpr, CLAMP: tl.constexpr, NEED_X: tl.constexpr,
                        NEED_P: tl.constexpr, NEED_W: tl.constexpr, BC: tl.constexpr,
                        BS: tl.constexpr):
    """``dL/dx`` of one span of spatial positions and the span's partial sums of the exponent
    and width terms per channel (``(N*NSB, C, K + 1)`` float64, for :func:`pow_reduce_kernel`).
    ``LEARN_W``: the width is read from ``w_ptr``; ``NEED_W``: its terms are summed (a width
    tensor that needs no gradient is still read, but its terms are not stored)."""
    n = tl.program_id(2).to(tl.int64)
    sb = tl.program_id(0)
    c = (tl.program_id(1) * BC + tl.arange(0, BC)).to(tl.int64)
    cm = c < C
    w = _width(w_ptr, w_val, LEARN_W)
    p_row = p_ptr + n * p_sn + c[:, None] * K
    if K == 1:
        pe1, umin, e_row, lp_row = _pow1_channel_constants(p_row, cm, lo, hi, off, CLAMP)
    acc = tl.zeros([BC, KP2], tl.float64)
    wacc = tl.zeros([BC], tl.float64)
    for s0 in range(0, SPAN, BS):  # SPAN: a multiple of BS
        s = (sb * SPAN + s0 + tl.arange(0, BS)).to(tl.int64)
        mask = cm[:, None] & (s < S)[None, :]
        y = tl.load(y_ptr + n * y_sn + c[:, None] * y_sc + s[None, :] * y_ss, mask=mask,
                    other=0.0).to(tl.float32)
        g = tl.load(g_ptr + n * g_sn + c[:, None] * g_sc + s[None, :] * g_ss, mask=mask,
                    other=0.0).to(tl.float32)
        a, sgn = _magnitude_and_sign(y, w, RELU)
        if K == 1:
            pe = pe1
            j, ji, u, l2, term, d = _pow1_terms(y, g, a, umin, e_row, lp_row)
        else:
            pe, j, ji, u, l2, term, d = _segment_terms(g, a, sgn, p_row, mask, lo, hi, off, K,
                                                       RELU, CLAMP)
        if NEED_X:
            gx = _input_grad(d, g, y, RELU)
            tl.store(gx_ptr + n * gx_sn + c[:, None] * gx_sc + s[None, :] * gx_ss,
                     _cast_for(gx, gx_ptr), mask=mask)
        if NEED_P:
            acc = _add_exponent_terms(acc, term, g, y, u, l2, sgn, ji, mask, KP2, K, RELU)
        if NEED_W:
            wacc = _add_width_terms(wacc, u, pe, j, d, y, g, sgn, mask, K, RELU)
    _store_partials(part_ptr, acc, wacc, n, sb, NSB, C, c, cm, K, KP2, NEED_P, NEED_W)


@triton.jit
def pow_reduce_kernel(part_ptr, p_ptr, w_ptr, w_val, lo, hi, off, gp_ptr, gw_ptr, N, NSB, C,
                      p_sn, K: tl.constexpr, KP2: tl.constexpr, SHARED: tl.constexpr,
                      LEARN_W: tl.constexpr, CLAMP: tl.constexpr, NEED_P: tl.constexpr,
                      BLOCK: tl.constexpr):
    """Program ``r < rows``: ``dL/dp`` of exponent row ``r``; program ``rows``: ``dL/dw``
    (``rows``: ``Np*C`` with ``NEED_P``, else 0, so the only program reduces the width).
    ``part`` is ``(N*NSB, C, K + 1)`` float64 (column ``K``: the width terms). With
    ``CLAMP`` the gradient is the raw parameter's: 0 where it is outside ``(lo, hi)``."""
    r = tl.program_id(0)
    if not NEED_P:
        rows = 0
    elif SHARED:
        rows = C
    else:
        rows = N * C
    kk = tl.arange(0, KP2)
    i = tl.arange(0, BLOCK)
    if r < rows:
        if NEED_P:
            c = r % C
            if SHARED:
                start = 0
                count = N * NSB
            else:
                start = (r // C) * NSB
                count = NSB
            acc = tl.zeros([BLOCK, KP2], tl.float64)
            for i0 in range(0, count, BLOCK):
                ii = (start + i0 + i).to(tl.int64)
                m = (i0 + i < count)[:, None] & (kk < K)[None, :]
                acc += tl.load(part_ptr + (ii[:, None] * C + c) * (K + 1) + kk[None, :], mask=m,
                               other=0.0)
            total = tl.sum(acc, axis=0)
            raw = tl.load(p_ptr + (r // C) * p_sn + c * K + kk, mask=kk < K, other=1.0)
            if K == 1:
                pe = _exponent(raw.to(tl.float32), lo, hi, off, CLAMP).to(tl.float64)
                total = total * (LN2 / pe)
            else:
                w = _width(w_ptr, w_val, LEARN_W)
                total = total * (w.to(tl.float64) * LN2)
            if CLAMP:  # torch's clamp passes no gradient at or beyond its limits
                total = tl.where((raw > lo) & (raw < hi), total, 0.0)
            tl.store(gp_ptr + r * K + kk, _cast_for(total.to(tl.float32), gp_ptr), mask=kk < K)
    else:
        if LEARN_W:
            acc_w = tl.zeros([BLOCK], tl.float64)
            count_w = N * NSB * C
            for i0 in range(0, count_w, BLOCK):
                ii = (i0 + i).to(tl.int64)
                acc_w += tl.load(part_ptr + ii * (K + 1) + K, mask=i0 + i < count_w, other=0.0)
            tl.store(gw_ptr, _cast_for(tl.sum(acc_w, axis=0).to(tl.float32), gw_ptr))


@triton.jit
def sf_forward_kernel(x_ptr, y_ptr, r, C, S, x_sn, x_sc, x_ss, y_sn, y_sc, y_ss,
                      RELU: tl.constexpr, BC: tl.constexpr, BS: tl.constexpr):
    """``y = floor(r*x)/r``; with the ReLU, negative values become ``-0.0`` (the mask bit)."""
    n = tl.program_id(2).to(tl.int64)
    c, s, mask = _tile(C, S, BC, BS)
    x = tl.load(x_ptr + n * x_sn + c[:, None] * x_sc + s[None, :] * x_ss, mask=mask,
                other=0.0).to(tl.float32)
    a = tl.floor(x * r)
    if RELU:
        a = tl.where(a < 0, -tl.zeros_like(a), a)
    out = tl.math.div_rn(a, r)
    tl.store(y_ptr + n * y_sn + c[:, None] * y_sc + s[None, :] * y_ss,
             _cast_for(out, y_ptr), mask=mask)


@triton.jit
def sf_backward_kernel(y_ptr, g_ptr, gx_ptr, C, S, y_sn, y_sc, y_ss, g_sn, g_sc, g_ss, gx_sn,
                       gx_sc, gx_ss, BC: tl.constexpr, BS: tl.constexpr):
    """``dL/dx = g`` where the sign bit of ``y`` is clear, else 0."""
    n = tl.program_id(2).to(tl.int64)
    c, s, mask = _tile(C, S, BC, BS)
    y = tl.load(y_ptr + n * y_sn + c[:, None] * y_sc + s[None, :] * y_ss, mask=mask,
                other=0.0).to(tl.float32)
    g = tl.load(g_ptr + n * g_sn + c[:, None] * g_sc + s[None, :] * g_ss, mask=mask,
                other=0.0).to(tl.float32)
    keep = y.to(tl.int32, bitcast=True) >= 0
    tl.store(gx_ptr + n * gx_sn + c[:, None] * gx_sc + s[None, :] * gx_ss,
             _cast_for(tl.where(keep, g, 0.0), gx_ptr), mask=mask)


@triton.jit
def row_moments_kernel(x_ptr, mean_ptr, std_ptr, C, S, inv_s, x_sn, x_sc, x_ss, RELU: tl.constexpr,
                       STD: tl.constexpr, BS: tl.constexpr):
    """Per ``(n, c)``: the mean of ``z`` (``max(x, 0)`` with ``RELU``) over ``S`` and, with
    ``STD``, ``sqrt(mean((z - mean z)**2))``, float32, into ``(N, C)`` outputs
    (``inv_s = 1/max(S, 1)``)."""
    c = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1).to(tl.int64)
    base = x_ptr + n * x_sn + c * x_sc
    acc = tl.zeros([BS], tl.float32)
    for s0 in range(0, S, BS):
        s = s0 + tl.arange(0, BS).to(tl.int64)
        z = tl.load(base + s * x_ss, mask=s < S, other=0.0).to(tl.float32)
        if RELU:
            z = tl.where(z < 0, 0.0, z)
        acc += z
    mean = tl.sum(acc, axis=0) * inv_s
    tl.store(mean_ptr + n * C + c, mean)
    if STD:
        acc2 = tl.zeros([BS], tl.float32)
        for s0 in range(0, S, BS):
            s = s0 + tl.arange(0, BS).to(tl.int64)
            z = tl.load(base + s * x_ss, mask=s < S, other=0.0).to(tl.float32)
            if RELU:
                z = tl.where(z < 0, 0.0, z)
            dz = tl.where(s < S, z - mean, 0.0)
            acc2 += dz * dz
        tl.store(std_ptr + n * C + c, tl.sqrt(tl.sum(acc2, axis=0) * inv_s))


@triton.jit
def add_channel_grad_kernel(gx_ptr, y_ptr, g_ptr, inv_count, C, S, gx_sn, gx_sc, gx_ss, y_sn,
                            y_sc, y_ss, g_sn, g_sc, BC: tl.constexpr, BS: tl.constexpr):
    """In place ``gx += g[n, c] / count`` where ``y > 0`` (the mean's gradient through the ReLU)."""
    n = tl.program_id(2).to(tl.int64)
    c, s, mask = _tile(C, S, BC, BS)
    y = tl.load(y_ptr + n * y_sn + c[:, None] * y_sc + s[None, :] * y_ss, mask=mask,
                other=0.0).to(tl.float32)
    g = tl.load(g_ptr + n * g_sn + c * g_sc, mask=c < C, other=0.0).to(tl.float32) * inv_count
    gx_at = gx_ptr + n * gx_sn + c[:, None] * gx_sc + s[None, :] * gx_ss
    gx = tl.load(gx_at, mask=mask, other=0.0).to(tl.float32)
    gx += tl.where(y > 0, g[:, None], 0.0)
    tl.store(gx_at, _cast_for(gx, gx_ptr), mask=mask)
