/* Fused CPU kernels for POW-k fused with a ReLU (float32), called through ctypes.
 *
 * One pass over the data per direction instead of the ~10 torch passes of the blocked
 * torch path in functional.py, with vectorisable polynomial log2/exp2 (Cephes logf/exp2f
 * coefficients, about 1 ulp in the ranges used here). The maths is the torch path's:
 * rows are the (N*C) channels, `p` holds k exponents per row, `w` the width.
 *
 *   forward : a = max(x, 0)/w, j = min(floor(a), k-1), u = a - j,
 *             y = w*(j + exp2(p_j*log2 u))   (0 where u <= TINY; IEEE: +inf stays +inf,
 *             a power beyond FLT_MAX is +inf, NaN stays NaN)
 *   backward: a = y/w (same j, u);  l2 = log2 t = log2(min(max(u, umin_j), FLT_MAX))/p_j
 *             clamped to log2 T_MIN
 *             dp_j += g*u*l2        (caller multiplies by w*ln2)
 *             gx    = y > 0 ? g*p_j*exp2(l2*(p_j-1)) : 0   (NaN where y is NaN)
 * dp is summed in float per row; a row whose float sum is not finite is summed again in
 * double (so finite outputs never give inf - inf = NaN), which costs nothing otherwise.
 * A NaN output (k > 1) adds a NaN term to segment 0, as in the torch path.
 * No headers beyond the C library: compiled at first use (kernels.py), no torch ABI.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* kernels.py loads a library only if this returns its ABI_VERSION */
#define FQ_DET_POW_KERNEL_ABI 2
#define TINY 1e-30f
#define LOG2_TMIN (-19.931568569324174f) /* log2(1e-6) */
#define CHUNK 512
#define MAX_K 64

static inline float as_float(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
static inline int32_t as_int(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

int32_t fq_det_pow_kernel_abi(void) { return FQ_DET_POW_KERNEL_ABI; }

/* log2 of a normal, positive, finite float */
static inline float fast_log2(float x) {
    int32_t bits = as_int(x);
    int32_t e = ((bits >> 23) & 0xff) - 127;
    float m = as_float((bits & 0x007fffff) | 0x3f800000); /* [1, 2) */
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1 : e;
    float z = m - 1.0f, z2 = z * z;
    float y = 7.0376836292e-2f;
    y = y * z - 1.1514610310e-1f;
    y = y * z + 1.1676998740e-1f;
    y = y * z - 1.2420140846e-1f;
    y = y * z + 1.4249322787e-1f;
    y = y * z - 1.6668057665e-1f;
    y = y * z + 2.0000714765e-1f;
    y = y * z - 2.4999993993e-1f;
    y = y * z + 3.3333331174e-1f;
    y = y * z2 * z - 0.5f * z2;
    return (z + y) * 1.44269504088896341f + (float)e;
}

/* 2**v: 0 below 2**-125, +inf where 2**v exceeds FLT_MAX (as exp2f), NaN for NaN */
static inline float fast_exp2(float v) {
    float vc = v < -125.0f ? -125.0f : (v > 129.0f ? 129.0f : v);
    float n = floorf(vc + 0.5f), f = vc - n;
    float px = 1.535336188319500e-4f;
    px = px * f + 1.339887440266574e-3f;
    px = px * f + 9.618437357674640e-3f;
    px = px * f + 5.550332471162809e-2f;
    px = px * f + 2.402264791363012e-1f;
    px = px * f + 6.931472028550421e-1f;
    px = 1.0f + px * f;
    /* 2**n = 2**(n-1) * 2: 2**128 is no float, and the product rounds to +inf exactly
     * where 2**v overflows (n = 129 gives the bits of +inf already) */
    float r = px * as_float(((int32_t)n + 126) << 23) * 2.0f;
    return v < -125.0f ? 0.0f : r;
}

/* y (may alias x) = POW_k(relu(x)) for rows [r0, r1) of an (rows, cols) array */
void pow_relu_forward(const float *x, float *y, int64_t r0, int64_t r1, int64_t cols,
                      const float *p, int32_t k, float w) {
    const float inv_w = 1.0f / w;
    for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        const float *pr = p + r * k;
        if (k == 1) {
            const float pe = pr[0];
#pragma omp simd
            for (int64_t i = 0; i < cols; ++i) {
                float a = xr[i] * inv_w;
                float ac = a > TINY ? a : TINY;
                float out = w * fast_exp2(pe * fast_log2(ac));
                out = a > TINY ? out : 0.0f;
                out = a == INFINITY ? a : out;
                yr[i] = a != a ? a : out; /* NaN stays NaN (as torch's ReLU keeps it) */
            }
        } else {
            const float last = (float)(k - 1);
#pragma omp simd
            for (int64_t i = 0; i < cols; ++i) {
                float x0 = xr[i] * inv_w;
                float a = x0 > 0.0f ? x0 : 0.0f;
                float j = floorf(a);
                j = j < last ? j : last;
                float u = a - j;
                float pe = pr[(int32_t)j];
                float uc = u > TINY ? u : TINY;
                float t = fast_exp2(pe * fast_log2(uc));
                t = u > TINY ? t : 0.0f;
                t = u == INFINITY ? u : t;
                float out = w * (j + t);
                yr[i] = x0 != x0 ? x0 : out; /* NaN stays NaN */
            }
        }
    }
}

/* one row's sum g*u*log2(u) (k = 1) in double: the rare case of a non-finite float sum */
static double exponent_grad_row_k1(const float *yr, const float *gr, int64_t cols, float inv_w,
                                   float umin) {
    double acc = 0.0;
    for (int64_t i = 0; i < cols; ++i) {
        float u = yr[i] * inv_w;
        float uc = u > umin ? u : umin;
        uc = uc < FLT_MAX ? uc : FLT_MAX;
        acc += (double)gr[i] * (double)u * (double)fast_log2(uc);
    }
    return acc;
}

/* one row's sums g*u*log2(t) per segment (k > 1) in double, added to out[0..k) */
static void exponent_grad_row(const float *yr, const float *gr, int64_t cols, const float *pr,
                              int32_t k, float inv_w, double *out) {
    const float last = (float)(k - 1);
    for (int64_t i = 0; i < cols; ++i) {
        float a0 = yr[i] * inv_w;
        float a = a0 > 0.0f ? a0 : 0.0f;
        float j = floorf(a);
        j = j < last ? j : last;
        float u = a0 != a0 ? a0 : a - j; /* a NaN output: a NaN term in segment 0 */
        float pe = pr[(int32_t)j];
        float uc = u > TINY ? u : TINY;
        uc = uc < FLT_MAX ? uc : FLT_MAX;
        float l2 = fast_log2(uc) / pe;
        l2 = l2 > LOG2_TMIN ? l2 : LOG2_TMIN;
        out[(int32_t)j] += (double)gr[i] * (double)u * (double)l2;
    }
}

/* gx = dL/dx (always written), dp[r*k + j] += sum g*u*log2(t) (times w*ln2 later);
 * y is the forward output */
void pow_relu_backward(const float *y, const float *g, float *gx, double *dp, int64_t r0, int64_t r1,
                       int64_t cols, const float *p, int32_t k, float w, int32_t need_p) {
    const float inv_w = 1.0f / w;
    float jbuf[CHUNK], vbuf[CHUNK];
    for (int64_t r = r0; r < r1; ++r) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *gxr = gx + r * cols;
        const float *pr = p + r * k;
        if (k == 1) {
            const float pe = pr[0], inv_p = 1.0f / pe, e = (pe - 1.0f) * inv_p;
            const float lp = fast_log2(pe);
            float umin = fast_exp2(pe * LOG2_TMIN);
            umin = umin > TINY ? umin : TINY;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < cols; ++i) {
                float yv = yr[i], gv = gr[i];
                float u = yv * inv_w;
                float uc = u > umin ? u : umin;
                uc = uc < FLT_MAX ? uc : FLT_MAX; /* y = +inf: p = 1 still gives dy/dx = 1 */
                float l2u = fast_log2(uc);        /* log2 u = p * log2 t */
                acc += gv * u * l2u;              /* times ln2/p (caller: w*ln2, here 1/p) */
                float d = fast_exp2(l2u * e + lp) * gv;
                gxr[i] = yv > 0.0f ? d : (yv == yv ? 0.0f : yv); /* NaN: NaN */
            }
            if (need_p) {
                double sum = isfinite(acc) ? (double)acc
                                           : exponent_grad_row_k1(yr, gr, cols, inv_w, umin);
                dp[r] += sum * inv_p;
            }
        } else {
            const float last = (float)(k - 1);
            float acc[4][MAX_K];
            if (need_p) memset(acc, 0, sizeof(acc));
            for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
                const int64_t n = cols - c0 < CHUNK ? cols - c0 : CHUNK;
#pragma omp simd
                for (int64_t i = 0; i < n; ++i) {
                    float yv = yr[c0 + i], gv = gr[c0 + i];
                    float a0 = yv * inv_w;
                    float a = a0 > 0.0f ? a0 : 0.0f;
                    float j = floorf(a);
                    j = j < last ? j : last;
                    float u = a0 != a0 ? a0 : a - j; /* NaN output: NaN term in segment 0 */
                    float pe = pr[(int32_t)j];
                    float uc = u > TINY ? u : TINY;
                    uc = uc < FLT_MAX ? uc : FLT_MAX;
                    float l2 = fast_log2(uc) / pe;
                    l2 = l2 > LOG2_TMIN ? l2 : LOG2_TMIN;
                    jbuf[i] = j;
                    vbuf[i] = gv * u * l2;
                    float d = pe * fast_exp2(l2 * (pe - 1.0f)) * gv;
                    gxr[c0 + i] = yv > 0.0f ? d : (yv == yv ? 0.0f : yv);
                }
                if (need_p) {
                    int64_t i = 0;
                    for (; i + 4 <= n; i += 4) { /* 4 independent accumulators */
                        acc[0][(int32_t)jbuf[i]] += vbuf[i];
                        acc[1][(int32_t)jbuf[i + 1]] += vbuf[i + 1];
                        acc[2][(int32_t)jbuf[i + 2]] += vbuf[i + 2];
                        acc[3][(int32_t)jbuf[i + 3]] += vbuf[i + 3];
                    }
                    for (; i < n; ++i) acc[0][(int32_t)jbuf[i]] += vbuf[i];
                }
            }
            if (need_p) {
                double sums[MAX_K];
                int finite = 1;
                for (int32_t j = 0; j < k; ++j) {
                    float s = acc[0][j] + acc[1][j] + acc[2][j] + acc[3][j];
                    finite &= isfinite(s) != 0;
                    sums[j] = s;
                }
                if (!finite) {
                    memset(sums, 0, sizeof(sums));
                    exponent_grad_row(yr, gr, cols, pr, k, inv_w, sums);
                }
                for (int32_t j = 0; j < k; ++j) dp[r * k + j] += sums[j];
            }
        }
    }
}
