// AVX2 integer block dots: maddubs (u8 x s8 pairs into int16) then madd (pairs into int32).
// Compiled with the build's baseline flags (-mavx2 -mfma).
#include "kernels/int_dot_x86.h"

namespace moa::kernels {

namespace {

struct Avx2Dot {
  // Q8_0: |w| against x with w's sign moved onto it (pairs stay below int16 saturation).
  static constexpr int kQ8Off = 0;
  static __m256i q8(__m256i w, __m256i x) {
    return dot(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  }
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
  // Lane sums times sc_lo in the low 128 bits, sc_hi in the high: the scale rides in madd.
  static __m256i scaled(__m256i u, __m256i s, int sc_lo, int sc_hi) {
    const __m256i sc =
        _mm256_set_m128i(_mm_set1_epi16(int16_t(sc_hi)), _mm_set1_epi16(int16_t(sc_lo)));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc);
  }
};

}  // namespace

IntRowFn int_row_avx2(GgmlType t) { return X86<Avx2Dot>::table(t); }

}  // namespace moa::kernels
