// AVX-512 VNNI integer block dots: vpdpbusd sums 4 u8 x s8 products straight into int32 (no
// int16 step), on 256-bit registers (AVX512VL). Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (CMakeLists.txt); chosen only when cpu_features() reports VNNI.
#include "kernels/int_dot_x86.h"

namespace moa::kernels {

namespace {

struct VnniDot {
  // Q8_0: w + 128 (the sign bit flipped) as u8 against x, then 128 * sum(x) taken off: one xor
  // instead of abs + sign.
  static constexpr int kQ8Off = 128;
  static __m256i q8(__m256i w, __m256i x) {
    return dot(_mm256_xor_si256(w, _mm256_set1_epi8(char(0x80))), x);
  }
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
  }
  static __m256i scaled(__m256i u, __m256i s, int sc_lo, int sc_hi) {
    const __m256i sc = _mm256_set_m128i(_mm_set1_epi32(sc_hi), _mm_set1_epi32(sc_lo));
    return _mm256_mullo_epi32(dot(u, s), sc);
  }
};

}  // namespace

IntRowFn int_row_vnni(GgmlType t) { return X86<VnniDot>::table(t); }

}  // namespace moa::kernels
