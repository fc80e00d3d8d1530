// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011).
//
// Why counter-based: element i of a random tensor is a pure function of (seed, offset + i),
// so any thread split, and the CUDA kernels (which call these same functions), reproduce the
// CPU draws.
// A Generator hands out disjoint counter ranges: each draw advances its offset.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <cmath>

#include "core/host_device.h"

namespace mmgrad {

struct Philox {
  // Four 32-bit random words for a 64-bit counter under a 64-bit key.
  MMGRAD_HOST_DEVICE static std::array<uint32_t, 4> block(uint64_t key, uint64_t counter) {
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
    uint32_t c2 = 0, c3 = 0;
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
      uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
      uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
      uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      uint32_t n1 = static_cast<uint32_t>(p1);
      uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      uint32_t n3 = static_cast<uint32_t>(p0);
      c0 = n0; c1 = n1; c2 = n2; c3 = n3;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return {c0, c1, c2, c3};
  }
  // Uniform in (0, 1], never 0, so log() in Box-Muller is safe. The 53 random bits become a
  // double in two exact int32 halves, the same value as one 64-bit conversion: AVX2 has no
  // vector 64-bit integer conversion, and GCC left uniform_many's loop scalar for want of it.
  MMGRAD_HOST_DEVICE static double to_unit_open0(uint32_t hi, uint32_t lo) {
    uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ lo;  // 53 random bits
    bits &= (1ull << 53) - 1;
    const double value = static_cast<double>(static_cast<int32_t>(bits >> 26)) * 67108864.0 +
                         static_cast<double>(static_cast<int32_t>(bits & ((1u << 26) - 1)));
    return (value + 1.0) * (1.0 / 9007199254740992.0);
  }
  // Element i of a uniform [0,1) stream: a pure function of (key, i).
  MMGRAD_HOST_DEVICE static double uniform(uint64_t key, uint64_t i) {
    auto r = block(key, i / 2);
    int lane = static_cast<int>(i % 2) * 2;
    return to_unit_open0(r[lane], r[lane + 1]) - 0x1p-53;  // in [0, 1)
  }
  // Elements first .. first + n - 1 of the uniform stream into out: the same values as
  // uniform(key, first + j), but each block computed once for its two draws (uniform()
  // computes it for each) and the blocks in vector lanes (rng.cpp). Host only.
  static void uniform_many(uint64_t key, uint64_t first, int64_t n, double* out);
  // Element i of a standard-normal stream (Box-Muller over one block per pair).
  MMGRAD_HOST_DEVICE static double normal(uint64_t key, uint64_t i) {
    auto r = block(key, i / 2);
    double u1 = to_unit_open0(r[0], r[1]);
    double u2 = to_unit_open0(r[2], r[3]);
    double radius = std::sqrt(-2.0 * std::log(u1));
    double angle = 6.283185307179586 * u2;
    return (i % 2 == 0) ? radius * std::cos(angle) : radius * std::sin(angle);
  }
};

// A seed plus a running offset. Each random op takes a fresh key from it, so consecutive
// draws never overlap and replaying the same seed replays the same sequence.
//
// next_key() is thread-safe: concurrent draws get distinct keys (in an unspecified order).
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x6d6d67726164ull) : seed_(seed) {}
  Generator(const Generator& other) : seed_(other.seed_), draws_(other.draws()) {}
  Generator& operator=(const Generator& other) {
    seed_ = other.seed_;
    draws_.store(other.draws());
    return *this;
  }
  void manual_seed(uint64_t seed) { seed_ = seed; draws_.store(0); }
  uint64_t seed() const { return seed_; }
  uint64_t draws() const { return draws_.load(); }  // saved in checkpoints to resume exactly
  void set_draws(uint64_t draws) { draws_.store(draws); }
  // The key for the next random op: mixes seed and draw index so streams are independent.
  uint64_t next_key() {
    auto r = Philox::block(seed_, draws_.fetch_add(1) | (1ull << 63));
    return (static_cast<uint64_t>(r[0]) << 32) | r[1];
  }

 private:
  uint64_t seed_;
  std::atomic<uint64_t> draws_{0};
};

// The process-wide generator used when an op is not given one.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace mmgrad
