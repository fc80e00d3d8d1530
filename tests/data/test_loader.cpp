// The background data loader: deterministic batches whatever the worker count, restart at
// any position (resume), bad-sample policies, match groups.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "core/test_util.h"
#include "data/bpe.h"
#include "data/image.h"
#include "data/loader.h"

using namespace mmgrad;
using namespace mmgrad::data;
namespace fs = std::filesystem;

namespace {

// n solid-colour 12x10 PNGs (image i has red = 20 i) and a table captioning them.
std::string make_table(const std::string& name, int n, const std::vector<std::string>& captions = {}) {
  const std::string dir = mmtest::temp_path(name);
  fs::create_directories(dir + "/img");
  std::ofstream t(dir + "/table.tsv");
  t << "filepath\ttitle\n";
  for (int i = 0; i < n; ++i) {
    Image img;
    img.width = 12;
    img.height = 10;
    img.pixels.assign(12 * 10 * 3, 0);
    for (size_t p = 0; p < img.pixels.size(); p += 3) img.pixels[p] = static_cast<uint8_t>(20 * i);
    write_png(dir + "/img/" + std::to_string(i) + ".png", img);
    t << "img/" << i << ".png\t" << (captions.empty() ? "image number " + std::to_string(i) : captions[static_cast<size_t>(i)]) << "\n";
  }
  return dir + "/table.tsv";
}

Preprocess small_preprocess() {
  Preprocess p = plain_preprocess(8);
  p.mean = {0, 0, 0};
  p.std = {1, 1, 1};
  return p;
}

// The red value of each image of a batch (exactly 20 i / 255 without augmentation).
std::vector<int> reds(const LoadedBatch& b) {
  std::vector<int> out;
  const auto v = to_vector<float>(b.images);
  const int64_t per = 3 * 8 * 8;
  for (int64_t i = 0; i < b.images.shape()[0]; ++i) out.push_back(static_cast<int>(std::lround(v[static_cast<size_t>(i * per)] * 255 / 20)));
  return out;
}

}  // namespace

TEST(Loader, BatchesDependOnlyOnSeedAndPosition) {
  if (!image_decoding_available()) GTEST_SKIP() << "built without libstb";
  const CaptionTable table = read_caption_table(make_table("loader_det", 10));
  const BpeTokenizer tok;
  auto run = [&](int64_t workers, bool augment, std::vector<int64_t> starts) {
    LoaderOptions o;
    o.workers = workers;
    o.prefetch = 3;
    o.augment = augment;
    ImageTextLoader loader(table, small_preprocess(), tok, 24, 7, o);
    std::vector<std::vector<float>> out;
    for (int64_t s : starts) {
      const LoadedBatch b = loader.batch(s, 4);
      EXPECT_EQ(b.images.shape(), (Shape{4, 3, 8, 8}));
      EXPECT_EQ(b.ids.shape(), (Shape{4, 24}));
      out.push_back(to_vector<float>(b.images));
    }
    return out;
  };
  const std::vector<int64_t> seq = {0, 4, 8, 12, 16, 20};
  for (bool augment : {false, true}) {
    const auto one = run(1, augment, seq);
    EXPECT_EQ(run(3, augment, seq), one) << "worker count changed the data";
    // A restart in the middle (as a resume does) gives the same batches from there on.
    const auto resumed = run(2, augment, {12, 16, 20});
    EXPECT_EQ(resumed[0], one[3]);
    EXPECT_EQ(resumed[2], one[5]);
  }
}

TEST(Loader, AStrideServesOneRanksShardOfEachGlobalBatch) {
  if (!image_decoding_available()) GTEST_SKIP() << "built without libstb";
  const CaptionTable table = read_caption_table(make_table("loader_stride", 10));
  const BpeTokenizer tok;
  LoaderOptions whole_opts;
  whole_opts.augment = true;
  ImageTextLoader whole(table, small_preprocess(), tok, 24, 7, whole_opts);
  LoaderOptions shard_opts = whole_opts;
  shard_opts.stride = 8;  // global batches of 8, this rank's shard is the second half
  ImageTextLoader shard(table, small_preprocess(), tok, 24, 7, shard_opts);
  for (int64_t step = 0; step < 3; ++step) {
    const LoadedBatch all = whole.batch(step * 8, 8);
    const LoadedBatch mine = shard.batch(step * 8 + 4, 4);
    EXPECT_EQ(to_vector<float>(mine.images), to_vector<float>(narrow(all.images, 0, 4, 4))) << step;
    EXPECT_EQ(to_vector<int64_t>(mine.ids), to_vector<int64_t>(narrow(all.ids, 0, 4, 4))) << step;
  }
}

TEST(Loader, EachEpochVisitsEveryRowOnceInASeededOrder) {
  if (!image_decoding_available()) GTEST_SKIP() << "built without libstb";
  const CaptionTable table = read_caption_table(make_table("loader_epoch", 10));
  const BpeTokenizer tok;
  LoaderOptions o;
  o.augment = false;
  ImageTextLoader loader(table, small_preprocess(), tok, 24, 3, o);
  std::vector<int> e0, e1;
  for (int64_t p = 0; p < 10; p += 5) for (int r : reds(loader.batch(p, 5))) e0.push_back(r);
  for (int64_t p = 10; p < 20; p += 5) for (int r : reds(loader.batch(p, 5))) e1.push_back(r);
  EXPECT_EQ(std::set<int>(e0.begin(), e0.end()).size(), 10u);
  EXPECT_EQ(std::set<int>(e1.begin(), e1.end()).size(), 10u);
  EXPECT_NE(e0, e1);  // a fresh permutation per epoch
  // The captions travel with their images.
  const LoadedBatch b = loader.batch(20, 5);
  for (size_t i = 0; i < 5; ++i) {
    const int64_t row = b.rows[i];
    EXPECT_EQ(reds(b)[i], row);
    const auto ids = to_vector<int64_t>(select(b.ids, 0, static_cast<int64_t>(i)));
    std::vector<int64_t> words(ids.begin() + 1, ids.end());
    words.resize(static_cast<size_t>(std::find(words.begin(), words.end(), tok.end_token()) - words.begin()));
    EXPECT_EQ(tok.decode(words), "image number " + std::to_string(row));
  }
}

TEST(Loader, BadSamplesFailByDefaultOrAreSkippedAndReported) {
  if (!image_decoding_available()) GTEST_SKIP() << "built without libstb";
  const std::string path = make_table("loader_bad", 6);
  std::ofstream(fs::path(path).parent_path() / "img/2.png", std::ios::trunc) << "not a png";
  const CaptionTable table = read_caption_table(path);
  const BpeTokenizer tok;
  {
    LoaderOptions o;
    o.augment = false;
    ImageTextLoader loader(table, small_preprocess(), tok, 24, 1, o);
    EXPECT_MMGRAD_ERROR(loader.batch(0, 6), "loader", "2.png", "line 4");
  }
  LoaderOptions o;
  o.augment = false;
  o.bad_samples = BadSamplePolicy::Skip;
  ImageTextLoader loader(table, small_preprocess(), tok, 24, 1, o);
  const LoadedBatch b = loader.batch(0, 6);
  ASSERT_EQ(b.bad.size(), 1u);
  EXPECT_NE(b.bad[0].find("2.png"), std::string::npos);
  const std::vector<int> r = reds(b);
  EXPECT_EQ(std::count(r.begin(), r.end(), 2), 0);  // never the broken image
  EXPECT_EQ(std::count(r.begin(), r.end(), 3), 2);  // the next row stood in for it
  EXPECT_TRUE(loader.take_epoch_reports().empty());  // epoch 0 is not over yet
  loader.batch(6, 6);
  const auto reports = loader.take_epoch_reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].first, 0);
  EXPECT_EQ(reports[0].second.size(), 1u);
  EXPECT_EQ(loader.take_epoch_reports(true).size(), 1u);  // epoch 1's own bad sample
}

TEST(Loader, MatchGroupsJoinSharedImagesAndSharedCaptions) {
  CaptionTable t;
  t.rows = {{"a.png", "seven", 2}, {"b.png", "seven", 3}, {"c.png", "three", 4}, {"c.png", "a three", 5},
            {"d.png", "four", 6}};
  const std::vector<int64_t> g = match_groups(t);
  EXPECT_EQ(g[0], g[1]);
  EXPECT_EQ(g[2], g[3]);
  EXPECT_NE(g[0], g[2]);
  EXPECT_NE(g[4], g[0]);
  EXPECT_NE(g[4], g[2]);
}

TEST(Loader, OptionErrors) {
  EXPECT_MMGRAD_ERROR(parse_bad_sample_policy("ignore"), "loader", "'fail' or 'skip'", "ignore");
  CaptionTable empty;
  empty.path = "x.tsv";
  const BpeTokenizer tok;
  EXPECT_MMGRAD_ERROR(ImageTextLoader(empty, small_preprocess(), tok, 8, 0, {}), "loader", "x.tsv", "no rows");
}
