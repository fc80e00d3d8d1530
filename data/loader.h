// The data loader for image-caption tables: background worker threads decode, preprocess and
// tokenize whole batches into a bounded prefetch queue, so that training only waits for data
// when decoding is slower than the step.
//
// Deterministic: the batch at global sample positions [p, p + B) is a pure function of the
// table, the seed and p (the order comes from the seeded per-epoch permutation of
// data/sampler.h, the augmentation from a key made of the seed and the position), whatever
// the number of workers. A run therefore resumes from its sample position alone, which the
// checkpoint already holds.
//
// Bad samples (a corrupt or missing image): by default the first one stops training with an
// error naming the file and the table line. With BadSamplePolicy::Skip the sample is replaced
// by the next good row of the table, and the bad ones are counted per epoch; the caller
// prints the report (take_epoch_reports) so the log shows them once per epoch.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/sampler.h"
#include "data/tokenizer.h"

namespace mmgrad::data {

enum class BadSamplePolicy { Fail, Skip };
BadSamplePolicy parse_bad_sample_policy(const std::string& name);  // "fail" or "skip"

struct LoaderOptions {
  int64_t workers = 2;    // background threads, each building whole batches
  int64_t prefetch = 4;   // batches built ahead of the one asked for
  // Sample positions from the start of one batch to the next (0: the batch size). A rank of
  // a data-parallel run reads its shard of each global batch: count = shard, stride = the
  // global batch.
  int64_t stride = 0;
  bool augment = true;    // training augmentation (preprocess_train) or the eval pipeline
  BadSamplePolicy bad_samples = BadSamplePolicy::Fail;
  DecodeOptions decode;
};

struct LoadedBatch {
  Tensor images;                  // f32 [B, 3, S, S], normalised
  Tensor ids;                     // i64 [B, context]
  std::vector<int64_t> groups;    // rows that share an image or a caption share a group
  std::vector<int64_t> rows;      // table row of each sample (after substitutions)
  std::vector<std::string> bad;   // "path (line N): reason" of each skipped sample
};

// Group ids for ITM negatives: rows connected by the same image file or the same caption
// text (MNIST has one caption per digit for many images) match each other.
std::vector<int64_t> match_groups(const CaptionTable& table);

// Decodes and preprocesses row `row` of the table; throws naming the file and the line.
void load_row(const CaptionTable& table, int64_t row, const Preprocess& pre, const DecodeOptions& decode,
              bool augment, uint64_t key, float* out);

class ImageTextLoader {
 public:
  ImageTextLoader(CaptionTable table, Preprocess preprocess, const Tokenizer& tokenizer, int64_t context_length,
                  uint64_t seed, LoaderOptions options);
  ~ImageTextLoader();
  ImageTextLoader(const ImageTextLoader&) = delete;
  ImageTextLoader& operator=(const ImageTextLoader&) = delete;

  // The batch of `count` samples at global positions [first, first + count). Calls that go
  // on where the last one ended (or, with a stride, one stride later) are served from the
  // queue; any other call (a resume) starts the workers afresh at `first`.
  LoadedBatch batch(int64_t first, int64_t count);

  // Bad samples of each epoch that has been fully consumed: (epoch, names), oldest first.
  // The list is emptied. `flush` also returns the current, unfinished epoch.
  std::vector<std::pair<int64_t, std::vector<std::string>>> take_epoch_reports(bool flush = false);

  int64_t size() const { return static_cast<int64_t>(table_.rows.size()); }
  const CaptionTable& table() const { return table_; }

 private:
  struct Slot {
    LoadedBatch batch;
    std::exception_ptr error;
  };
  void worker_loop();
  LoadedBatch build(int64_t first, int64_t count, EpochSampler& sampler) const;

  CaptionTable table_;
  Preprocess preprocess_;
  const Tokenizer& tokenizer_;
  int64_t context_length_;
  uint64_t seed_;
  LoaderOptions options_;
  std::vector<int64_t> groups_;

  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  bool stopping_ = false;
  uint64_t generation_ = 0;      // bumped on a restart: workers drop stale batches
  int64_t first_ = -1, count_ = 0, stride_ = 0;
  int64_t consumed_ = 0, scheduled_ = 0;  // batches handed out / started, counted from first_
  std::map<int64_t, Slot> slots_;
  std::vector<std::thread> workers_;

  // Bad-sample bookkeeping, on the consumer side only.
  std::map<int64_t, std::vector<std::string>> bad_by_epoch_;
  int64_t current_epoch_ = 0;
};

}  // namespace mmgrad::data
