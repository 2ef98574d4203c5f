// IEEE 754 binary16 (half) and bfloat16 <-> float conversions, bit-exact with ggml's scalar
// conversions (ggml-impl.h): round to nearest, ties to even; overflow to infinity; subnormals
// kept; NaN -> quiet NaN. Header-inline because every kernel's inner loop uses them.
#pragma once

#include <bit>
#include <cstdint>

namespace hearth::kernels {

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Exact (every half is a float).
// A signalling NaN comes back quiet with its payload, as a float multiply would (ggml's
// conversion goes through one).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {  // inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u));
  }
  if (exp != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  }
  // zero or subnormal: mant * 2^-24, exact in float.
  const float mag = static_cast<float>(mant) * 0x1p-24f;
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(mag));
}

// Round to nearest even. NaN becomes the canonical quiet NaN 0x7e00 (with the sign), as in
// ggml's scalar conversion (the payload is dropped).
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;  // NaN
  // 65520 = 0x477ff000 is halfway between 65504 (largest half, odd mantissa) and 2^16:
  // ties-to-even rounds it (and everything above) to infinity.
  if (ax >= 0x477ff000u) return sign | 0x7c00u;
  if (ax >= 0x38800000u) {  // >= 2^-14: a normal half
    // Drop 13 mantissa bits with round-to-nearest-even; a carry correctly bumps the exponent.
    const uint32_t rounded = ax + 0x0fffu + ((ax >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);  // rebias 127 -> 15
  }
  // Below 2^-14: half subnormals are multiples of 2^-24. Adding 0.5 (whose ulp is 2^-24)
  // makes the FPU round |f| to that grid with ties to even; the bit difference is the count
  // of 2^-24 units (1024 = 0x400 is the smallest normal, which is also correct).
  const float mag = std::bit_cast<float>(ax) + 0.5f;
  return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(mag) - std::bit_cast<uint32_t>(0.5f));
}

// bfloat16 is the top half of a float.
inline float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaN stays NaN and is made quiet (bit 6 of the half), like ggml.
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace hearth::kernels
