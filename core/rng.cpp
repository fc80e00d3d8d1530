#include "core/rng.h"

#include "core/multiversion.h"

namespace mmgrad {
namespace {

// Blocks b0 .. b0 + pairs - 1, two draws each. A separate function so that it alone is
// multiversioned: its loop runs the ten rounds of several blocks side by side in vector
// lanes (32 x 32 -> 64-bit products), which the per-draw loop of a caller cannot.
MMGRAD_MULTIVERSION void uniform_pairs(uint64_t key, uint64_t b0, int64_t pairs, double* out) {
  for (int64_t p = 0; p < pairs; ++p) {
    const std::array<uint32_t, 4> r = Philox::block(key, b0 + static_cast<uint64_t>(p));
    out[2 * p] = Philox::to_unit_open0(r[0], r[1]) - 0x1p-53;  // as uniform() does
    out[2 * p + 1] = Philox::to_unit_open0(r[2], r[3]) - 0x1p-53;
  }
}

}  // namespace

void Philox::uniform_many(uint64_t key, uint64_t first, int64_t n, double* out) {
  if (n <= 0) return;
  if (first % 2 == 1) {  // the second half of a block
    *out++ = uniform(key, first++);
    --n;
  }
  const int64_t pairs = n / 2;
  uniform_pairs(key, first / 2, pairs, out);
  if (n % 2 == 1) out[n - 1] = uniform(key, first + static_cast<uint64_t>(n - 1));
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace mmgrad
