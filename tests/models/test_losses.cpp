// The objectives against direct double-precision evaluations of their formulas, and their
// gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/losses.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {

std::vector<std::vector<double>> rows_of(const Tensor& t) {
  std::vector<double> v = to_vector<double>(t);
  int64_t n = t.shape()[0], e = t.shape()[1];
  std::vector<std::vector<double>> out(n, std::vector<double>(e));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < e; ++j) out[i][j] = v[i * e + j];
  return out;
}
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
// A fusion model small enough for f64 gradient checks: width 16, 2 heads.
ModelConfig small_fusion_config(int64_t layers) {
  ModelConfig c = preset("clip-tiny");
  c.text_width = c.vision_width = 16;
  c.text_heads = 2;
  c.fusion_layers = layers;
  return c;
}

}  // namespace

TEST(Losses, ClipLossMatchesTheFormula) {
  Generator gen(1);
  Tensor img = l2_normalize(randn({5, 7}, DType::F64, Device::cpu(), &gen));
  Tensor txt = l2_normalize(randn({5, 7}, DType::F64, Device::cpu(), &gen));
  const double s = std::log(1 / 0.07);
  double got = item(clip_loss(img, txt, scalar_tensor(s, DType::F64)));
  auto I = rows_of(img), T = rows_of(txt);
  double loss_i = 0, loss_t = 0;
  for (int i = 0; i < 5; ++i) {
    double zi = 0, zt = 0;
    for (int j = 0; j < 5; ++j) {
      zi += std::exp(std::exp(s) * dot(I[i], T[j]));
      zt += std::exp(std::exp(s) * dot(I[j], T[i]));
    }
    loss_i += std::log(zi) - std::exp(s) * dot(I[i], T[i]);
    loss_t += std::log(zt) - std::exp(s) * dot(I[i], T[i]);
  }
  EXPECT_NEAR(got, (loss_i + loss_t) / 10, 1e-12);
}

TEST(Losses, SiglipLossMatchesTheFormula) {
  Generator gen(2);
  Tensor img = l2_normalize(randn({4, 6}, DType::F64, Device::cpu(), &gen));
  Tensor txt = l2_normalize(randn({4, 6}, DType::F64, Device::cpu(), &gen));
  const double tp = std::log(10.0), b = -10.0;
  double got = item(siglip_loss(img, txt, scalar_tensor(tp, DType::F64), scalar_tensor(b, DType::F64)));
  auto I = rows_of(img), T = rows_of(txt);
  double want = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      double z = i == j ? 1 : -1;
      double l = std::exp(tp) * dot(I[i], T[j]) + b;
      want -= std::log(1 / (1 + std::exp(-z * l)));
    }
  EXPECT_NEAR(got, want / 4, 1e-12);
}

TEST(Losses, ContrastiveGradientsMatchFiniteDifferences) {
  Generator gen(3);
  Tensor img = randn({4, 5}, DType::F64, Device::cpu(), &gen).set_requires_grad();
  Tensor txt = randn({4, 5}, DType::F64, Device::cpu(), &gen).set_requires_grad();
  Tensor scale = scalar_tensor(1.5, DType::F64).set_requires_grad();
  Tensor bias = scalar_tensor(-2.0, DType::F64).set_requires_grad();
  auto r = gradcheck([](const std::vector<Tensor>& x) { return clip_loss(l2_normalize(x[0]), l2_normalize(x[1]), x[2]); },
                     {img, txt, scale});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck([](const std::vector<Tensor>& x) { return siglip_loss(l2_normalize(x[0]), l2_normalize(x[1]), x[2], x[3]); },
                {img, txt, scale, bias});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Losses, CaptionTargetsStopAtTheFirstEndOfText) {
  // EOT id 9; row 0 ends at position 3, row 1 fills the context, row 2 is EOT right away.
  // Row 3 has no EOT at all (a truncated caption): every position is a target.
  Tensor ids = from_data<int64_t>({1, 4, 5, 9, 0, 0,
                                   2, 3, 4, 5, 6, 9,
                                   1, 9, 0, 0, 0, 9,
                                   9, 1, 2, 3, 4, 5}, {4, 6});
  const std::vector<int64_t> want{4, 5, 9, -100, -100,
                                  3, 4, 5, 6, 9,
                                  9, -100, -100, -100, -100,
                                  1, 2, 3, 4, 5};
  EXPECT_EQ(to_vector<int64_t>(caption_targets(ids, 9)), want);
  EXPECT_EQ(to_vector<int64_t>(caption_targets(ids.to(DType::I32), 9)), want);
  EXPECT_EQ(caption_target_count(ids, 9), 3 + 5 + 1 + 5);
}

TEST(Losses, CaptionLossAveragesOverPredictedTokensOnly) {
  Generator gen(4);
  Tensor ids = from_data<int64_t>({1, 2, 3, 0, 3, 3, 3, 3}, {2, 4});  // EOT id 3
  Tensor logits = randn({2, 4, 5}, DType::F64, Device::cpu(), &gen).set_requires_grad();
  double got = item(caption_loss(logits, ids, 3));
  // Predicted: row 0 positions 0,1 -> tokens 2,3; row 1 position 0 -> token 3.
  auto lsm = to_vector<double>(log_softmax(logits, -1));
  double want = -(lsm[0 * 5 + 2] + lsm[1 * 5 + 3] + lsm[4 * 5 + 3]) / 3;
  EXPECT_NEAR(got, want, 1e-12);
  auto r = gradcheck([&](const std::vector<Tensor>& x) { return caption_loss(x[0], ids, 3); }, {logits});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Losses, BadShapesAreErrors) {
  EXPECT_MMGRAD_ERROR(clip_loss(zeros({4, 5}), zeros({3, 5}), zeros({})), "clip_loss", "[B, E]");
  EXPECT_MMGRAD_ERROR(caption_loss(zeros({2, 4, 5}), zeros({2, 3}, DType::I64), 3), "caption_loss", "[B, T, V]");
}

TEST(Itm, CyclicAndHardNegatives) {
  EXPECT_EQ(cyclic_negatives(4), (std::vector<int64_t>{3, 0, 1, 2}));
  EXPECT_MMGRAD_ERROR(cyclic_negatives(1), "itm", "at least 2");
  // A similarity with one dominant off-diagonal entry per row: that entry is drawn.
  const int64_t B = 6;
  std::vector<double> sim(B * B, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    sim[i * B + i] = 100;  // the positive: never drawn
    sim[i * B + (i + 2) % B] = 50;
  }
  Generator gen(1);
  EXPECT_EQ(hard_negatives(from_data(sim, {B, B}), gen), (std::vector<int64_t>{2, 3, 4, 5, 0, 1}));
  // With equal similarities every other index is drawn, never the diagonal.
  std::vector<int> hits(B * B, 0);
  for (int r = 0; r < 300; ++r) {
    std::vector<int64_t> neg = hard_negatives(zeros({B, B}), gen);
    for (int64_t i = 0; i < B; ++i) ++hits[i * B + neg[i]];
  }
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      if (i == j) EXPECT_EQ(hits[i * B + j], 0);
      else EXPECT_GT(hits[i * B + j], 20) << i << "," << j;  // about 60 expected
    }
  Generator a(9), b(9);
  Tensor s = randn({B, B}, DType::F32, Device::cpu(), &gen);
  EXPECT_EQ(hard_negatives(s, a), hard_negatives(s, b));

  // Groups: the dominant entries (i, i+2) are in i's group, so they are never drawn; the
  // draw stays in the other group. A batch that is one group falls back to any j != i.
  const std::vector<int64_t> groups = {0, 1, 0, 1, 0, 1};  // i and i+2 share a group
  for (int r = 0; r < 50; ++r) {
    std::vector<int64_t> neg = hard_negatives(from_data(sim, {B, B}), gen, groups);
    for (int64_t i = 0; i < B; ++i) EXPECT_NE(groups[neg[i]], groups[i]) << i;
  }
  std::vector<int64_t> one_group = hard_negatives(from_data(sim, {B, B}), gen, std::vector<int64_t>(B, 7));
  for (int64_t i = 0; i < B; ++i) EXPECT_NE(one_group[i], i);
  EXPECT_MMGRAD_ERROR(hard_negatives(from_data(sim, {B, B}), gen, {0, 1}), "itm", "group id");
}

// The device-side draw (sample_hard_negatives: masked softmax, running sums by a product with
// a triangle of ones, the inverse CDF) against the plain sequential loop it replaced, on
// random similarities: the same index for every row, with and without groups, for whole
// matrices and for one rank's block of rows.
namespace {
std::vector<int64_t> hard_negatives_by_loop(const std::vector<double>& sim, int64_t rows, int64_t B,
                                            const std::vector<double>& draws, const std::vector<int64_t>& groups,
                                            int64_t first_row) {
  std::vector<int64_t> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = first_row + r;
    auto candidate = [&](int64_t j) { return j != i && (groups.empty() || groups[j] != groups[i]); };
    bool any = false;
    for (int64_t j = 0; j < B; ++j) any = any || candidate(j);
    auto allowed = [&](int64_t j) { return any ? candidate(j) : j != i; };
    double top = -INFINITY, total = 0;
    for (int64_t j = 0; j < B; ++j)
      if (allowed(j)) top = std::max(top, sim[r * B + j]);
    std::vector<double> w(B, 0.0);
    for (int64_t j = 0; j < B; ++j)
      if (allowed(j)) total += w[j] = std::exp(sim[r * B + j] - top);
    double u = draws[r] * total;
    for (int64_t j = 0; j < B; ++j) {
      if (!allowed(j)) continue;
      out[r] = j;
      if (u < w[j]) break;
      u -= w[j];
    }
  }
  return out;
}
}  // namespace

TEST(Itm, HardNegativesOnTheDeviceMatchTheSequentialDraw) {
  Generator gen(21);
  // Batch sizes that are and are not squares (the running sums go by chunks of ~sqrt(B)).
  for (int64_t B : {2, 3, 5, 16, 64, 300}) {
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t first_row = trial % 2 ? B / 2 : 0, rows = trial % 2 ? B - B / 2 : B;
      const std::vector<double> sim = to_vector<double>(mul(randn({rows, B}, DType::F64, Device::cpu(), &gen), 3.0));
      const std::vector<double> u = to_vector<double>(rand({rows}, DType::F64, Device::cpu(), &gen));
      std::vector<int64_t> groups;
      if (trial % 3 == 1)
        for (int64_t j = 0; j < B; ++j) groups.push_back(j / 3);
      if (trial % 3 == 2) groups.assign(B, 4);  // one group: any j != i
      const Tensor group_ids = groups.empty() ? Tensor() : from_data(groups, {B});
      const std::vector<int64_t> got = to_vector<int64_t>(
          sample_hard_negatives(from_data(sim, {rows, B}), from_data(u, {rows}), group_ids, first_row));
      EXPECT_EQ(got, hard_negatives_by_loop(sim, rows, B, u, groups, first_row)) << "B " << B << " trial " << trial;
    }
  }
  // Draws at the ends of [0, 1): the first and the last allowed index.
  const std::vector<double> flat(4 * 4, 0.0);
  EXPECT_EQ(to_vector<int64_t>(sample_hard_negatives(from_data(flat, {4, 4}), from_data<double>({0, 0, 0, 0}, {4}),
                                                     Tensor(), 0)),
            (std::vector<int64_t>{1, 0, 0, 0}));
  const double below_one = std::nextafter(1.0, 0.0);
  EXPECT_EQ(to_vector<int64_t>(sample_hard_negatives(from_data(flat, {4, 4}),
                                                     from_data<double>({below_one, below_one, below_one, below_one}, {4}),
                                                     Tensor(), 0)),
            (std::vector<int64_t>{3, 3, 3, 2}));
  EXPECT_MMGRAD_ERROR(sample_hard_negatives(from_data(flat, {4, 4}), from_data<double>({0, 0, 0}, {3}), Tensor(), 0),
                      "itm", "one draw per similarity row");
  // A NaN row draws the last allowed index; the other rows are unaffected.
  std::vector<double> with_nan = flat;
  with_nan[1 * 4 + 2] = NAN;
  EXPECT_EQ(to_vector<int64_t>(sample_hard_negatives(from_data(with_nan, {4, 4}), from_data<double>({0, 0, 0, 0}, {4}),
                                                     Tensor(), 0)),
            (std::vector<int64_t>{1, 3, 0, 0}));
  // A rejected call takes no draw from the generator.
  Generator untouched(3);
  EXPECT_MMGRAD_ERROR(hard_negatives(from_data(flat, {4, 4}), untouched, {}, 2), "itm", "first_row");
  EXPECT_EQ(untouched.draws(), 0u);
}

// Fusion of indexed pairs (distinct texts and images, one index per pair) against the same
// pairs gathered first: equal values, and equal gradients for the texts, the images and
// every parameter. Two layers: only the first runs its self-attention on the distinct texts.
TEST(Fusion, IndexedPairsMatchGatheredPairsInValuesAndGradients) {
  Generator gen(4);
  FusionTransformer fusion(small_fusion_config(2), gen);
  fusion.to(DType::F64);
  auto leaf = [&](const Shape& shape) {
    Tensor t = randn(shape, DType::F64, Device::cpu(), &gen);
    t.set_requires_grad();
    return t;
  };
  Tensor text = leaf({3, 4, 16}), image = leaf({2, 5, 16});
  const std::vector<int64_t> ti = {0, 2, 2, 1, 0}, ii = {1, 0, 1, 1, 0}, identity_text = {0, 1};
  auto idx = [](const std::vector<int64_t>& v) { return from_data(v, {static_cast<int64_t>(v.size())}); };
  Tensor weights = randn({5, 4, 16}, DType::F64, Device::cpu(), &gen);
  struct Result {
    std::vector<double> fused, d_text, d_image;
    std::vector<std::vector<double>> d_params;
  };
  auto run = [&](auto&& fuse) {
    fusion.zero_grad();
    text.set_grad(Tensor());
    image.set_grad(Tensor());
    Tensor fused = fuse();
    autograd::backward(sum(mul(fused, narrow(weights, 0, 0, fused.shape()[0]))));
    Result r{to_vector<double>(fused), to_vector<double>(text.grad()), to_vector<double>(image.grad()), {}};
    for (const auto& [name, p] : fusion.named_parameters())
      if (name.rfind("itm_head.", 0) != 0) r.d_params.push_back(to_vector<double>(p.grad()));  // the head is unused here
    return r;
  };
  auto expect_same = [](const Result& a, const Result& b) {
    auto near = [](const std::vector<double>& x, const std::vector<double>& y, const char* what) {
      ASSERT_EQ(x.size(), y.size()) << what;
      for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-12 * (1 + std::abs(y[i]))) << what << " " << i;
    };
    near(a.fused, b.fused, "fused");
    near(a.d_text, b.d_text, "text grad");
    near(a.d_image, b.d_image, "image grad");
    ASSERT_EQ(a.d_params.size(), b.d_params.size());
    for (size_t p = 0; p < a.d_params.size(); ++p) near(a.d_params[p], b.d_params[p], "parameter grad");
  };
  const Result gathered = run([&] {
    return fusion.forward(index_select(text, 0, idx(ti)), index_select(image, 0, idx(ii)));
  });
  // Every parameter, the texts and the images receive a gradient (none is cut off).
  for (const auto& g : gathered.d_params) EXPECT_GT(std::abs(g[0]) + std::abs(g.back()), 0.0);
  expect_same(run([&] { return fusion.forward(text, image, idx(ii), idx(ti)); }), gathered);
  // Either index alone.
  expect_same(run([&] { return fusion.forward(index_select(text, 0, idx(ti)), image, idx(ii)); }), gathered);
  const Result two = run([&] { return fusion.forward(narrow(text, 0, 0, 2), image, Tensor(), idx(identity_text)); });
  expect_same(two, run([&] { return fusion.forward(narrow(text, 0, 0, 2), image); }));
}

TEST(Fusion, BadPairIndicesAreClearErrors) {
  Generator gen(5);
  FusionTransformer fusion(small_fusion_config(1), gen);
  Tensor text = randn({3, 4, 16}), image = randn({2, 5, 16});
  auto idx = [](const std::vector<int64_t>& v) { return from_data(v, {static_cast<int64_t>(v.size())}); };
  // An image index past the images, a text index past the texts, indices of unequal length.
  EXPECT_MMGRAD_ERROR(fusion.forward(text, image, idx({0, 1, 2})), "index_select", "out of range");
  EXPECT_MMGRAD_ERROR(fusion.forward(text, image, idx({0, 1, 1}), idx({0, 3, 1})), "index_select", "out of range");
  EXPECT_MMGRAD_ERROR(fusion.forward(text, image, idx({0, 1}), idx({0, 1, 2})), "Attention", "memory_index");
  EXPECT_MMGRAD_ERROR(fusion.forward(text, image, Tensor(), idx({0, 1, 2})), "Attention", "memory [B, S, W]");
  EXPECT_MMGRAD_ERROR(fusion.forward(text, image, randn({3})), "Attention", "memory_index as integers");
  Attention attn(16, 2, gen);
  EXPECT_MMGRAD_ERROR(attn.forward(text, Tensor(), false, Tensor(), idx({0, 0, 0})), "Attention", "needs a memory");
}

TEST(Itm, LossIsCrossEntropyOverPositiveAndNegativePairs) {
  Generator gen(2);
  FusionTransformer fusion(small_fusion_config(1), gen);
  fusion.to(DType::F64);
  Tensor text = randn({3, 4, 16}, DType::F64, Device::cpu(), &gen);
  Tensor image = randn({3, 5, 16}, DType::F64, Device::cpu(), &gen);
  std::vector<int64_t> neg_img = {2, 0, 1}, neg_txt = {1, 2, 0};
  double got = item(itm_loss(fusion, text, image, neg_img, neg_txt));
  // Each pair on its own, then the mean of -log p(label).
  double total = 0;
  auto pair_loss = [&](int64_t t, int64_t i, int label) {
    Tensor logits = fusion.itm_logits(fusion.forward(narrow(text, 0, t, 1), narrow(image, 0, i, 1)));
    return -to_vector<double>(log_softmax(logits, -1))[label];
  };
  for (int64_t k = 0; k < 3; ++k) total += pair_loss(k, k, 1) + pair_loss(k, neg_img[k], 0) + pair_loss(neg_txt[k], k, 0);
  EXPECT_NEAR(got, total / 9, 1e-12);
  // Only image negatives (the benchmark's cyclic form): 2B pairs.
  double got2 = item(itm_loss(fusion, text, image, cyclic_negatives(3)));
  double total2 = 0;
  for (int64_t k = 0; k < 3; ++k) total2 += pair_loss(k, k, 1) + pair_loss(k, (k + 2) % 3, 0);
  EXPECT_NEAR(got2, total2 / 6, 1e-12);
  // Negatives drawn from gathered pools (as in a data-parallel run: every rank's states), of
  // a different size than the batch: the negatives are pool rows.
  Tensor text_pool = randn({5, 4, 16}, DType::F64, Device::cpu(), &gen);
  Tensor image_pool = randn({5, 5, 16}, DType::F64, Device::cpu(), &gen);
  const std::vector<int64_t> pool_img = {4, 0, 3}, pool_txt = {1, 4, 4};
  double got3 = item(itm_loss(fusion, text, image, pool_img, pool_txt, text_pool, image_pool));
  auto pool_pair_loss = [&](const Tensor& t, const Tensor& i, int label) {
    Tensor logits = fusion.itm_logits(fusion.forward(t, i));
    return -to_vector<double>(log_softmax(logits, -1))[label];
  };
  double total3 = 0;
  for (int64_t k = 0; k < 3; ++k)
    total3 += pool_pair_loss(narrow(text, 0, k, 1), narrow(image, 0, k, 1), 1) +
              pool_pair_loss(narrow(text, 0, k, 1), narrow(image_pool, 0, pool_img[k], 1), 0) +
              pool_pair_loss(narrow(text_pool, 0, pool_txt[k], 1), narrow(image, 0, k, 1), 0);
  EXPECT_NEAR(got3, total3 / 9, 1e-12);
  EXPECT_MMGRAD_ERROR(itm_loss(fusion, text, image, {0, 5, 1}, pool_txt, text_pool, image_pool), "itm",
                      "negative image index 5 is out of range [0, 5)");
  EXPECT_MMGRAD_ERROR(itm_loss(fusion, text, image, neg_img, {0, -1, 1}), "itm",
                      "negative text index -1 is out of range [0, 3)");
  // Unequal batches: the pairs would silently index the pool's rows.
  EXPECT_MMGRAD_ERROR(itm_loss(fusion, text, narrow(image, 0, 0, 2), {1, 0, 0}, pool_txt, text_pool, image_pool),
                      "itm", "as many images as texts");
}
