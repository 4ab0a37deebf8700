// AVX2 integer block dots: maddubs (u8 x s8 pairs into int16) then madd (pairs into int32).
// Compiled with the build's baseline flags (-mavx2 -mfma).
#include "kernels/int_dot_x86.h"

namespace moa::kernels {

namespace {

struct Avx2Dot {
  // Q8_0: |w| against x with w's sign moved onto it (pairs stay below int16 saturation).
  static __m256i q8(__m256i w, __m256i x) {
    return dot(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  }
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
};

}  // namespace

IntRowFn int_row_avx2(GgmlType t) { return X86<Avx2Dot>::table(t); }
RowDotFn row_dot_avx2(GgmlType t) { return RowDots<Avx2Dot>::table(t); }

}  // namespace moa::kernels
