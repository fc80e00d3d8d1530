#include "data/loader.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/sampler.h"

namespace mmgrad::data {
namespace {

int64_t find_root(std::vector<int64_t>& parent, int64_t i) {
  while (parent[static_cast<size_t>(i)] != i) i = parent[static_cast<size_t>(i)] = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
  return i;
}

}  // namespace

BadSamplePolicy parse_bad_sample_policy(const std::string& name) {
  if (name == "fail") return BadSamplePolicy::Fail;
  if (name == "skip") return BadSamplePolicy::Skip;
  fail("loader", "bad_samples must be 'fail' or 'skip', got '" + name + "'");
}

std::vector<int64_t> match_groups(const CaptionTable& table) {
  const auto n = static_cast<int64_t>(table.rows.size());
  std::vector<int64_t> parent(static_cast<size_t>(n));
  std::iota(parent.begin(), parent.end(), 0);
  std::unordered_map<std::string, int64_t> first_image, first_caption;
  for (int64_t i = 0; i < n; ++i) {
    const CaptionRow& r = table.rows[static_cast<size_t>(i)];
    for (auto* m : {&first_image, &first_caption}) {
      const std::string& key = m == &first_image ? r.image_path : r.caption;
      const auto [it, inserted] = m->emplace(key, i);
      if (!inserted) parent[static_cast<size_t>(find_root(parent, i))] = find_root(parent, it->second);
    }
  }
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = find_root(parent, i);
  return out;
}

void load_row(const CaptionTable& table, int64_t row, const Preprocess& pre, const DecodeOptions& decode,
              bool augment, uint64_t key, float* out) {
  const CaptionRow& r = table.rows[static_cast<size_t>(row)];
  try {
    const Image img = decode_image_file(r.image_path, decode);
    if (augment) preprocess_train(img, pre, key, out);
    else preprocess_eval(img, pre, out);
  } catch (const Error& e) {
    fail("loader", fmt::format("'{}' line {}: {}", table.path, r.line, e.what()));
  }
}

ImageTextLoader::ImageTextLoader(CaptionTable table, Preprocess preprocess, const Tokenizer& tokenizer,
                                 int64_t context_length, uint64_t seed, LoaderOptions options)
    : table_(std::move(table)), preprocess_(preprocess), tokenizer_(tokenizer), context_length_(context_length),
      seed_(seed), options_(options) {
  if (table_.rows.empty()) fail("loader", "the caption table '" + table_.path + "' has no rows");
  if (options_.workers < 1) fail("loader", fmt::format("needs at least 1 worker, got {}", options_.workers));
  if (options_.prefetch < 1) fail("loader", fmt::format("prefetch must be at least 1 batch, got {}", options_.prefetch));
  groups_ = match_groups(table_);
  for (int64_t w = 0; w < options_.workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

ImageTextLoader::~ImageTextLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

LoadedBatch ImageTextLoader::build(int64_t first, int64_t count, EpochSampler& sampler) const {
  const int64_t S = preprocess_.image_size, N = size();
  const size_t per_image = static_cast<size_t>(3 * S * S);
  std::vector<float> pixels(per_image * static_cast<size_t>(count));
  LoadedBatch b;
  std::vector<std::string> captions;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t pos = first + i;
    int64_t row = sampler.index(pos);
    // The augmentation key: a pure function of (seed, position).
    const auto words = Philox::block(seed_ ^ 0x4c4f4144ull, static_cast<uint64_t>(pos));
    const uint64_t key = words[0] | static_cast<uint64_t>(words[1]) << 32;
    for (int64_t tries = 0;; ++tries) {
      try {
        load_row(table_, row, preprocess_, options_.decode, options_.augment, key, pixels.data() + per_image * static_cast<size_t>(i));
        break;
      } catch (const Error& e) {
        if (options_.bad_samples == BadSamplePolicy::Fail) throw;
        b.bad.push_back(e.what());
        if (tries + 1 >= N) fail("loader", "every sample of '" + table_.path + "' failed to load; the last: " + e.what());
        row = (row + 1) % N;  // the next row of the table stands in
      }
    }
    b.rows.push_back(row);
    b.groups.push_back(groups_[static_cast<size_t>(row)]);
    captions.push_back(table_.rows[static_cast<size_t>(row)].caption);
  }
  b.images = from_data(pixels, {count, 3, S, S});
  b.ids = tokenizer_.encode_batch(captions, context_length_);
  return b;
}

void ImageTextLoader::worker_loop() {
  EpochSampler sampler(size(), seed_);  // one per worker: it caches the current epoch's order
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || (first_ >= 0 && scheduled_ < consumed_ + options_.prefetch); });
    if (stopping_) return;
    const int64_t k = scheduled_++, first = first_ + k * stride_, count = count_;
    const uint64_t generation = generation_;
    lock.unlock();
    Slot slot;
    try {
      slot.batch = build(first, count, sampler);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
    if (generation == generation_) {
      slots_[k] = std::move(slot);
      ready_cv_.notify_all();
    }
  }
}

LoadedBatch ImageTextLoader::batch(int64_t first, int64_t count) {
  if (count < 1) fail("loader", fmt::format("a batch needs at least 1 sample, got {}", count));
  std::unique_lock<std::mutex> lock(mutex_);
  if (first != first_ + consumed_ * stride_ || count != count_ || first_ < 0) {
    ++generation_;  // a restart (the first call, or a resume): in-flight batches are dropped
    slots_.clear();
    first_ = first;
    count_ = count;
    stride_ = options_.stride > 0 ? options_.stride : count;
    consumed_ = scheduled_ = 0;
    work_cv_.notify_all();
  }
  const int64_t k = consumed_;
  ready_cv_.wait(lock, [&] { return slots_.count(k) > 0; });
  Slot slot = std::move(slots_[k]);
  slots_.erase(k);
  ++consumed_;
  lock.unlock();
  work_cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);

  // Per-epoch bad-sample report: a batch belongs to the epoch of its first sample.
  const int64_t epoch = first / size();
  current_epoch_ = epoch;
  auto& list = bad_by_epoch_[epoch];
  list.insert(list.end(), slot.batch.bad.begin(), slot.batch.bad.end());
  return std::move(slot.batch);
}

std::vector<std::pair<int64_t, std::vector<std::string>>> ImageTextLoader::take_epoch_reports(bool flush) {
  std::vector<std::pair<int64_t, std::vector<std::string>>> out;
  for (auto it = bad_by_epoch_.begin(); it != bad_by_epoch_.end();) {
    if (it->first < current_epoch_ || flush) {
      if (!it->second.empty()) out.emplace_back(it->first, std::move(it->second));
      it = bad_by_epoch_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace mmgrad::data
