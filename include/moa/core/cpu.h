// Run-time CPU feature detection and the instruction-set level the fast kernels may use. The
// binary is built for the AVX2+FMA baseline; wider paths live in files compiled with their own
// target flags and are chosen here, once, from what the CPU (and the OS) supports. Tests and
// benchmarks lower the level with set_isa_cap, or pass a level to a kernel directly.
#pragma once

namespace moa {

struct CpuFeatures {
  bool avx2_fma = false;     // AVX2 + FMA (+ F16C): the build's baseline
  bool avx512 = false;       // AVX-512 F + BW + VL, the subsets the 512-bit kernels use
  bool avx512_vnni = false;  // vpdpbusd (u8 x s8 dot into int32)
  bool avx512_bf16 = false;  // vdpbf16ps (bf16 pair dot into f32)
};

// Detected once (cpuid and xgetbv through the compiler's __builtin_cpu_supports).
const CpuFeatures& cpu_features();

// Ordered levels: each one includes the ones below it. kAvx512Vnni means AVX-512 F/BW/VL plus
// VNNI; BF16 is reported by cpu_features() and used only at kAvx512Vnni and above when present.
enum class IsaLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };

const char* isa_name(IsaLevel l);  // "scalar", "avx2", "avx512", "avx512_vnni"
IsaLevel detected_isa();           // the highest level this CPU supports
// The level kernels use by default: min(detected_isa(), cap). The cap starts at the highest
// level; tests and benchmarks set it to compare paths (process-wide, not thread-local).
IsaLevel active_isa();
void set_isa_cap(IsaLevel cap);
// Whether this CPU can run kernels of level l.
inline bool isa_available(IsaLevel l) { return int(l) <= int(detected_isa()); }

}  // namespace moa
