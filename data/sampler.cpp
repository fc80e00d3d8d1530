#include "data/sampler.h"

#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace mmgrad::data {

EpochSampler::EpochSampler(int64_t dataset_size, uint64_t seed) : size_(dataset_size), seed_(seed) {
  if (dataset_size <= 0) fail("EpochSampler", "the dataset is empty");
}

int64_t EpochSampler::index(int64_t position) {
  if (position < 0) fail("EpochSampler", "negative sample position");
  const int64_t epoch = position / size_;
  if (epoch != cached_epoch_) {
    // Fisher-Yates with Philox draws keyed by (seed, epoch): any epoch can be rebuilt alone.
    order_.resize(static_cast<size_t>(size_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    const uint64_t key = seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch);
    for (int64_t i = size_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(Philox::uniform(key, static_cast<uint64_t>(i)) * static_cast<double>(i + 1));
      std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(std::min(j, i))]);
    }
    cached_epoch_ = epoch;
  }
  return order_[static_cast<size_t>(position % size_)];
}

}  // namespace mmgrad::data
