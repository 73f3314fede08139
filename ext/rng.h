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
  /// \brief Standard normal (Box-Muller; one of each pair is used, so draws stay aligned).
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// \brief Gamma with shape k and scale 1 (Marsaglia and Tsang, 2000; for k < 1 the
  /// k + 1 draw is scaled by U^(1/k)).
  double gamma(double k) {
    if (k < 1.0) return gamma(k + 1.0) * std::pow(1.0 - uniform(), 1.0 / k);
    const double d = k - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = 1.0 - uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace hwbench
