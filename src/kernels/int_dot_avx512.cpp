// AVX-512 (F/BW/VL without VNNI) level: no kernels of its own yet, so quant_matvec falls back to
// the 256-bit AVX2 kernels (it picks level by level). A 512-bit maddubs version is the place to
// add one if it beats AVX2 on an idle AVX-512 machine; decode is memory bound, so it may not.
#include "kernels/int_dot.h"

namespace moa::kernels {

IntRowFn int_row_avx512(GgmlType) { return nullptr; }

}  // namespace moa::kernels
