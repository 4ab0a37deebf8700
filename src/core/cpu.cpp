#include "moa/core/cpu.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>

namespace moa {

namespace {

// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}

CpuFeatures detect() {
  __builtin_cpu_init();
  CpuFeatures f;
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
  f.avx512 = f.avx2_fma && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
  return f;
}

std::atomic<int> g_cap{int(IsaLevel::kAvx512Vnni)};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* isa_name(IsaLevel l) {
  switch (l) {
    case IsaLevel::kScalar:
      return "scalar";
    case IsaLevel::kAvx2:
      return "avx2";
    case IsaLevel::kAvx512:
      return "avx512";
    case IsaLevel::kAvx512Vnni:
      return "avx512_vnni";
  }
  return "?";
}

IsaLevel detected_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512_vnni) return IsaLevel::kAvx512Vnni;
  if (f.avx512) return IsaLevel::kAvx512;
  if (f.avx2_fma) return IsaLevel::kAvx2;
  return IsaLevel::kScalar;
}

IsaLevel active_isa() { return IsaLevel(std::min(int(detected_isa()), g_cap.load())); }

void set_isa_cap(IsaLevel cap) { g_cap.store(int(cap)); }

}  // namespace moa
