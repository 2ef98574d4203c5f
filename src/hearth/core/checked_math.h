// Overflow-checked integer arithmetic for sizes and offsets that come from untrusted input.
#pragma once

#include <cstdint>
#include <optional>

namespace hearth {

// Each returns std::nullopt on overflow (or, for unsigned subtraction, underflow).
template <typename T>
constexpr std::optional<T> checked_add(T a, T b) {
  T r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

template <typename T>
constexpr std::optional<T> checked_sub(T a, T b) {
  T r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

template <typename T>
constexpr std::optional<T> checked_mul(T a, T b) {
  T r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Rounds x up to a multiple of `align` (align > 0); nullopt on overflow.
constexpr std::optional<uint64_t> checked_align_up(uint64_t x, uint64_t align) {
  if (align == 0) return std::nullopt;
  uint64_t rem = x % align;
  if (rem == 0) return x;
  return checked_add<uint64_t>(x, align - rem);
}

}  // namespace hearth
