// Rng: the sampler's explicit, portable pseudo-random generator.
//
// Algorithm: xoshiro256** 1.0 (Blackman & Vigna, "Scrambled linear pseudorandom number
// generators", 2018; https://prng.di.unimi.it/xoshiro256starstar.c), with its 256-bit state
// filled from a 64-bit seed by four outputs of SplitMix64 (https://prng.di.unimi.it/splitmix64.c),
// as the authors recommend. Only fixed-width integer arithmetic is used, so a seed gives the same
// stream on every platform and compiler (std::uniform_*_distribution is implementation-defined,
// so hearth never uses it for sampling).
#pragma once

#include <array>
#include <cstdint>

namespace hearth::sampling {

// One SplitMix64 step: advances `state` and returns the next output.
uint64_t splitmix64_next(uint64_t& state);

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);

  // Uses a raw xoshiro256** state (for reference-vector tests). An all-zero state is invalid
  // for xoshiro and is replaced by the state that seed 0 produces.
  static Rng from_state(const std::array<uint64_t, 4>& state);

  // The next 64 random bits.
  uint64_t next_u64();

  // A uniform double in [0, 1): the top 53 bits of next_u64() scaled by 2^-53.
  double next_double();

  const std::array<uint64_t, 4>& state() const { return s_; }

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace hearth::sampling
