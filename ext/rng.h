// Seeded random streams whose output is the same with every compiler and standard library
// (std::*_distribution is implementation-defined, so it is not used).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace hwbench {

/// \brief The independent random streams of a run. Each is seeded from its own setting through
/// stream_seed(), so no two share a draw even when their settings are equal or adjacent (MLPerf
/// LoadGen keeps separate qsl, sample-index and schedule seeds for the same reason).
enum class Stream : uint64_t { SampleSet = 1, WarmupIndex = 2, SampleIndex = 3, Schedule = 4 };

/// \brief SplitMix64's finaliser: a bijection of 64-bit values that scatters neighbours.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// \brief The engine seed of stream `s` drawn from setting `seed`.
inline uint64_t stream_seed(uint64_t seed, Stream s) {
  return mix64(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(s));
}

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
