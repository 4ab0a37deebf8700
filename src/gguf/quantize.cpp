// Reference quantisers: see include/moa/gguf/quantize.h for the rule of each type. Compiled
// without floating-point contraction (CMakeLists.txt): gguf-py rounds every product on its own.
#include "moa/gguf/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/error.h"
#include "moa/core/half.h"

namespace moa {

namespace {

void put_half(uint8_t* p, float x) {
  const uint16_t h = f32_to_f16(x);
  std::memcpy(p, &h, 2);
}

// The smallest half >= v (v >= 0 and finite): a scale rounded up, so that the range it spans still
// covers the values it was computed from.
uint16_t half_up(float v) {
  uint16_t h = f32_to_f16(v);
  if (f16_to_f32(h) < v && h < 0x7bff) ++h;  // next half up (positive halves order as integers)
  return h;
}

// Round to nearest, ties to even (the FPU's default mode, as ggml's nearest_int).
int rne(float x) { return int(std::nearbyint(x)); }

// Value of largest magnitude (the first of equals), as numpy's argmax of abs.
float signed_amax(const float* x, int n) {
  float best = 0, m = 0;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > best) {
      best = std::fabs(x[j]);
      m = x[j];
    }
  }
  return m;
}

// Packs 32 values of 0..15 (the low 4 bits of q) as value j in nibble j/16 of qs[j%16].
void pack_nibbles32(const int* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 15) | (q[j + 16] & 15) << 4);
}

// Bit 4 of value j into bit j of a little-endian u32.
void pack_high32(const int* q, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= uint32_t((q[j] >> 4) & 1) << j;
  for (int k = 0; k < 4; ++k) qh[k] = uint8_t(h >> (8 * k));
}

void q8_0(const float* x, uint8_t* b) {  // d(2) qs(32)
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
}

// Q4_0 (levels 16, bias 8) and Q5_0 (levels 32, bias 16): d = m / -bias.
void q_sym(const float* x, uint8_t* b, int bias) {
  const float d = signed_amax(x, 32) / float(-bias), id = d != 0 ? 1.0f / d : 0.0f;
  int q[32];
  for (int j = 0; j < 32; ++j) {
    const double t = std::trunc(double(x[j]) * double(id) + (double(bias) + 0.5));
    q[j] = int(std::clamp(t, 0.0, double(2 * bias - 1)));
  }
  put_half(b, d);
  if (bias == 8) return pack_nibbles32(q, b + 2);
  pack_high32(q, b + 2);     // qh(4)
  pack_nibbles32(q, b + 6);  // qs(16)
}

// Q4_1 (top 15) and Q5_1 (top 31): d = (max - min) / top, m = min.
void q_affine(const float* x, uint8_t* b, int top) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < 32; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const float d = (hi - lo) / float(top), id = d != 0 ? 1.0f / d : 0.0f;
  int q[32];
  for (int j = 0; j < 32; ++j) {
    const float t = std::trunc((x[j] - lo) * id + 0.5f);
    q[j] = int(std::clamp(t, 0.0f, float(top)));
  }
  put_half(b, d);
  put_half(b + 2, lo);
  if (top == 15) return pack_nibbles32(q, b + 4);
  pack_high32(q, b + 4);
  pack_nibbles32(q, b + 8);
}

// Scale index r (0..target) for `need` with unit d, at least need (the "+1 when short" rule).
int covering(float need, float d, int target) {
  if (d == 0) return 0;
  int s = std::clamp(rne(need / d), 0, target);
  if (d * float(s) < need && s < target) ++s;
  return s;
}

// The 12 scale bytes of Q4_K / Q5_K (layout in src/gguf/quant.cpp, k_scale_min).
void pack_k_scales(const int* sc, const int* mn, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int i = 0; i < 4; ++i) {
    s[i] = uint8_t(sc[i]);
    s[i + 4] = uint8_t(mn[i]);
  }
  for (int i = 4; i < 8; ++i) {
    s[i + 4] = uint8_t((sc[i] & 15) | (mn[i] & 15) << 4);
    s[i - 4] |= uint8_t((sc[i] >> 4) << 6);
    s[i] |= uint8_t((mn[i] >> 4) << 6);
  }
}

// Q4_K (top 15): d(2) dmin(2) scales(12) qs(128); Q5_K (top 31): ... qh(32) qs(128).
void q_k_affine(const float* x, uint8_t* b, int top) {
  float m[8], hi[8], mmax = 0;
  for (int s = 0; s < 8; ++s) {
    float lo = 0;
    hi[s] = x[32 * s];
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * s + l]);
      hi[s] = std::max(hi[s], x[32 * s + l]);
    }
    m[s] = -lo;
    mmax = std::max(mmax, m[s]);
  }
  const uint16_t dmin_h = half_up(mmax / 63.0f);
  const float dmin = f16_to_f32(dmin_h);
  int sc[8], mn[8];
  float need[8], nmax = 0;
  for (int s = 0; s < 8; ++s) {
    mn[s] = covering(m[s], dmin, 63);
    need[s] = (hi[s] + dmin * float(mn[s])) / float(top);
    nmax = std::max(nmax, need[s]);
  }
  const uint16_t d_h = half_up(nmax / 63.0f);
  const float d = f16_to_f32(d_h);
  std::memcpy(b, &d_h, 2);
  std::memcpy(b + 2, &dmin_h, 2);
  for (int s = 0; s < 8; ++s) sc[s] = covering(need[s], d, 63);
  pack_k_scales(sc, mn, b + 4);
  uint8_t* qh = top == 31 ? b + 16 : nullptr;
  uint8_t* qs = top == 31 ? b + 48 : b + 16;
  if (qh) std::memset(qh, 0, 32);
  for (int s = 0; s < 8; ++s) {
    const float ds = d * float(sc[s]), dm = dmin * float(mn[s]);
    const float inv = ds != 0 ? 1.0f / ds : 0.0f;
    uint8_t* q = qs + 32 * (s / 2);
    for (int l = 0; l < 32; ++l) {
      const int v = std::clamp(rne((x[32 * s + l] + dm) * inv), 0, top);
      if (s % 2 == 0)
        q[l] = uint8_t(v & 15);
      else
        q[l] |= uint8_t((v & 15) << 4);
      if (qh) qh[l] |= uint8_t(((v >> 4) & 1) << s);
    }
  }
}

// Q6_K: ql(128) qh(64) scales(16, int8) d(2); bit positions as deq_q6_k in src/gguf/quant.cpp.
void q6_k(const float* x, uint8_t* b) {
  float need[16], nmax = 0;
  for (int g = 0; g < 16; ++g) {
    float amax = 0;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * g + l]));
    need[g] = amax / 31.0f;
    nmax = std::max(nmax, need[g]);
  }
  const uint16_t d_h = half_up(nmax / 127.0f);
  const float d = f16_to_f32(d_h);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  auto* scales = reinterpret_cast<int8_t*>(b + 192);
  std::memset(b, 0, 192);
  std::memcpy(b + 208, &d_h, 2);
  float inv[16];
  for (int g = 0; g < 16; ++g) {
    const int sc = covering(need[g], d, 127);
    scales[g] = int8_t(sc);
    const float ds = d * float(sc);
    inv[g] = ds != 0 ? 1.0f / ds : 0.0f;
  }
  for (int n = 0; n < 256; ++n) {
    const int v = std::clamp(rne(x[n] * inv[n / 16]), -32, 31) + 32;
    const int h = n / 128, k = (n % 128) / 32, l = n % 32;
    ql[64 * h + 32 * (k % 2) + l] |= uint8_t((v & 15) << (4 * (k / 2)));
    qh[32 * h + l] |= uint8_t((v >> 4) << (2 * k));
  }
}

}  // namespace

bool ggml_quantizable(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
  }
  return false;
}

void quantize_row_ref(GgmlType t, const float* src, int64_t n, uint8_t* dst) {
  MOA_CHECK(ggml_quantizable(t), "cannot quantise to {}", ggml_type_name(t));
  const GgmlTypeTraits tr = ggml_type_traits(uint32_t(t));
  MOA_CHECK(n % tr.block == 0, "{} values are not a whole number of {} blocks of {}", n, tr.name,
            tr.block);
  if (t == GgmlType::kF32) return void(std::memcpy(dst, src, size_t(n) * 4));
  if (t == GgmlType::kF16 || t == GgmlType::kBF16) {
    for (int64_t j = 0; j < n; ++j) {
      const uint16_t h = t == GgmlType::kF16 ? f32_to_f16(src[j]) : f32_to_bf16(src[j]);
      std::memcpy(dst + 2 * j, &h, 2);
    }
    return;
  }
  for (int64_t k = 0; k < n / tr.block; ++k) {
    const float* x = src + k * tr.block;
    uint8_t* b = dst + k * tr.bytes;
    switch (t) {
      case GgmlType::kQ8_0:
        q8_0(x, b);
        break;
      case GgmlType::kQ4_0:
        q_sym(x, b, 8);
        break;
      case GgmlType::kQ5_0:
        q_sym(x, b, 16);
        break;
      case GgmlType::kQ4_1:
        q_affine(x, b, 15);
        break;
      case GgmlType::kQ5_1:
        q_affine(x, b, 31);
        break;
      case GgmlType::kQ4_K:
        q_k_affine(x, b, 15);
        break;
      case GgmlType::kQ5_K:
        q_k_affine(x, b, 31);
        break;
      case GgmlType::kQ6_K:
        q6_k(x, b);
        break;
      default:
        MOA_CHECK(false, "unreachable");
    }
  }
}

}  // namespace moa
