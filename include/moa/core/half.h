// Scalar conversions between f32 and the 16-bit float formats (round-to-nearest-even for
// f32 -> bf16/f16, as PyTorch does). Shared by safetensors, GGUF and the weight kernels.
#pragma once

#include <cstdint>

namespace moa {

float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace moa
