// AVX-512 VNNI integer block dots: vpdpbusd sums 4 u8 x s8 products straight into int32 (no
// int16 step), on 256-bit registers (AVX512VL). Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (CMakeLists.txt); chosen only when cpu_features() reports VNNI.
#include "kernels/int_dot_x86.h"

namespace moa::kernels {

namespace {

struct VnniDot {
  // Q8_0: |w| against x with w's sign moved onto it, as on AVX2 but with no int16 step. (w + 128
  // against x needs 128 * (sum of x per lane) taken off, which costs as much as the abs.)
  static __m256i q8(__m256i w, __m256i x) {
    return dot(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  }
  static __m256i dot(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
  }
};

}  // namespace

IntRowFn int_row_vnni(GgmlType t) { return X86<VnniDot>::table(t); }
RowDotFn row_dot_vnni(GgmlType t) { return RowDots<VnniDot>::table(t); }

}  // namespace moa::kernels
