// The order in which a training run visits a dataset: a fresh seeded permutation every
// epoch, addressed by the run's global sample position, so a resumed run (which restores
// only the position) sees exactly the samples the uninterrupted run would have.
#pragma once
#include <cstdint>
#include <vector>

namespace mmgrad::data {

class EpochSampler {
 public:
  EpochSampler(int64_t dataset_size, uint64_t seed);
  // The dataset index of the sample at global position p (p counts samples over epochs).
  int64_t index(int64_t position);
  int64_t epoch_of(int64_t position) const { return position / size_; }

 private:
  int64_t size_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace mmgrad::data
