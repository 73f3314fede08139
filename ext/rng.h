// Seeded random streams whose output is the same with every compiler and standard library
// (std::*_distribution is implementation-defined, so it is not used).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace hwbench {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  /// \brief Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  /// \brief Uniform integer in [0, n), by multiply-shift (bias below 2^-40 for n < 2^24).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(engine_()) * n) >> 64);
  }
  /// \brief Exponential with the given rate (events per unit).
  double exponential(double rate) { return -std::log1p(-uniform()) / rate; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace hwbench
