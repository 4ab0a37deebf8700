// Forward/backward pairs of the Llama ops (everything but attention, see ops_attention.cpp).
// Every backward adds into its gradient outputs.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "moa/model/backward.h"
#include "moa/model/forward.h"
#include "moa/core/error.h"

namespace moa {

// ---- embedding ------------------------------------------------------------------------------

void embedding_forward(const Weight& table, const int32_t* ids, int64_t T, float* out) {
  const int64_t C = table.cols;
  for (int64_t t = 0; t < T; ++t) {
    MOA_CHECK(ids[t] >= 0 && ids[t] < table.rows, "token id {} (vocab {})", ids[t], table.rows);
    table.row_f32(ids[t], out + t * C);
  }
}

void embedding_backward(const float* dout, const int32_t* ids, int64_t T, int64_t C,
                        float* dtable) {
  // Serial over t: repeated ids add into the same row.
  for (int64_t t = 0; t < T; ++t) {
    float* row = dtable + int64_t(ids[t]) * C;
    const float* d = dout + t * C;
    for (int64_t i = 0; i < C; ++i) row[i] += d[i];
  }
}

// ---- RMSNorm --------------------------------------------------------------------------------

void rmsnorm_forward(const float* x, const float* w, int64_t T, int64_t C, double eps, float* y,
                     float* rstd) {
  rms_norm(x, w, T, C, eps, y, rstd);  // the inference norm, so training and inference agree bitwise
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int64_t T,
                      int64_t C, float* dx, float* dw) {
  // y_i = x_i r w_i, r = (mean(x^2) + eps)^-1/2, dr/dx_k = -r^3 x_k / C:
  // dx_k = r w_k dy_k - r^3 x_k / C * sum_i dy_i w_i x_i ;  dw_i = sum_t dy_i x_i r
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const float* d = dy + t * C;
    const float* xr = x + t * C;
    const float r = rstd[t];
    double dot = 0;
    for (int64_t i = 0; i < C; ++i) dot += double(d[i]) * w[i] * xr[i];
    const float c = float(dot * double(r) * r * r / double(C));
    float* o = dx + t * C;
    for (int64_t i = 0; i < C; ++i) o[i] += r * w[i] * d[i] - c * xr[i];
  }
  if (dw) {
    // Each thread owns a block of columns (one writer per dw[i]) and walks the rows in order.
#pragma omp parallel if (T * C > 65536)
    {
      const int nt = omp_get_num_threads(), it = omp_get_thread_num();
      const int64_t c0 = C * it / nt, c1 = C * (it + 1) / nt;
      std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
      for (int64_t t = 0; t < T; ++t) {
        const float* d = dy + t * C;
        const float* xr = x + t * C;
        const double r = rstd[t];
        for (int64_t i = c0; i < c1; ++i) acc[size_t(i - c0)] += double(d[i]) * xr[i] * r;
      }
      for (int64_t i = c0; i < c1; ++i) dw[i] += float(acc[size_t(i - c0)]);
    }
  }
}

// ---- linear ---------------------------------------------------------------------------------

void linear_forward(const float* x, const Weight& W, const float* b, int64_t T, float* y) {
  matmul(x, W, b, T, y);
}

void linear_backward(const float* dy, const float* x, const Weight& W, int64_t T, float* dx,
                     float* dW, float* db) {
  const int64_t in = W.cols, out = W.rows;
  if (dx) {
    // dx (T, in) += dy (T, out) W (out, in)
    if (W.dtype == DType::kF32) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(in), int(out), 1.0f, dy,
                  int(out), W.f32.data(), int(in), 1.0f, dx, int(in));
    } else {
      // Half-width weights: convert panels of rows to f32, never the whole matrix.
      const int64_t panel = std::max<int64_t>(64, (int64_t(8) << 20) / (4 * in));
      std::vector<float> buf(static_cast<size_t>(std::min(panel, out) * in));
      for (int64_t r0 = 0; r0 < out; r0 += panel) {
        const int64_t n = std::min(panel, out - r0);
#pragma omp parallel for schedule(static) if (n * in > 65536)
        for (int64_t r = 0; r < n; ++r) W.row_f32(r0 + r, &buf[size_t(r * in)]);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(in), int(n), 1.0f,
                    dy + r0, int(out), buf.data(), int(in), 1.0f, dx, int(in));
      }
    }
  }
  if (dW) {
    // dW (out, in) += dy^T (out, T) x (T, in)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(out), int(in), int(T), 1.0f, dy,
                int(out), x, int(in), 1.0f, dW, int(in));
  }
  if (db) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t o = 0; o < out; ++o) db[o] += dy[t * out + o];
    }
  }
}

// ---- RoPE -----------------------------------------------------------------------------------

void rope_forward(const RopeTable& rope, float* x, int64_t T, int64_t heads) {
  rope.apply(x, T, heads, 0);
}

void rope_backward(const RopeTable& rope, float* dx, int64_t T, int64_t heads) {
  // The forward is a rotation per pair (i, i + D/2); its transpose rotates by -angle.
  const int64_t half = rope.half, D = 2 * half;
#pragma omp parallel for schedule(static) if (T > 8)
  for (int64_t t = 0; t < T; ++t) {
    const float* c = &rope.cos[size_t(t * half)];
    const float* s = &rope.sin[size_t(t * half)];
    for (int64_t h = 0; h < heads; ++h) {
      float* v = dx + (t * heads + h) * D;
      for (int64_t i = 0; i < half; ++i) {
        const float d1 = v[i], d2 = v[i + half];
        v[i] = d1 * c[i] + d2 * s[i];
        v[i + half] = d2 * c[i] - d1 * s[i];
      }
    }
  }
}

// ---- SwiGLU ---------------------------------------------------------------------------------

void swiglu_forward(const float* gate, const float* up, int64_t n, float* h) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    h[i] = g / (1.0f + std::exp(-g)) * up[i];  // same arithmetic as the inference path
  }
}

void swiglu_backward(const float* dh, const float* gate, const float* up, int64_t n, float* dgate,
                     float* dup) {
  // silu(g) = g s, s = sigmoid(g);  silu'(g) = s (1 + g (1 - s))
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i], s = 1.0f / (1.0f + std::exp(-g));
    dgate[i] += dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] += dh[i] * g * s;
  }
}

void residual_add(const float* x, int64_t n, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// ---- cross-entropy --------------------------------------------------------------------------

namespace {
// max and log(sum exp(x - max)) of one row, in double
void row_lse(const float* x, int64_t V, float* mx, double* log_sum) {
  float m = -INFINITY;
  for (int64_t i = 0; i < V; ++i) m = std::max(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(double(x[i] - m));
  *mx = m;
  *log_sum = std::log(s);
}
}  // namespace

void cross_entropy_forward(const float* logits, const int32_t* targets, int64_t T, int64_t V,
                           float* nll) {
#pragma omp parallel for schedule(static) if (T * V > 65536)
  for (int64_t t = 0; t < T; ++t) {
    MOA_CHECK(targets[t] >= 0 && targets[t] < V, "target {} (vocab {})", targets[t], V);
    const float* x = logits + t * V;
    float m;
    double ls;
    row_lse(x, V, &m, &ls);
    nll[t] = float(ls + double(m) - double(x[targets[t]]));
  }
}

void cross_entropy_backward(const float* logits, const int32_t* targets, const float* dnll,
                            int64_t T, int64_t V, float* dlogits) {
#pragma omp parallel for schedule(static) if (T * V > 65536)
  for (int64_t t = 0; t < T; ++t) {
    const float dl = dnll[t];
    if (dl == 0.0f) continue;
    const float* x = logits + t * V;
    float m;
    double ls;
    row_lse(x, V, &m, &ls);
    const double shift = double(m) + ls;
    float* d = dlogits + t * V;
    for (int64_t i = 0; i < V; ++i) d[i] += dl * float(std::exp(double(x[i]) - shift));
    d[targets[t]] -= dl;
  }
}

}  // namespace moa
