// The objectives against direct double-precision evaluations of their formulas, and their
// gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>

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
  Tensor ids = from_data<int64_t>({1, 4, 5, 9, 0, 0,
                                   2, 3, 4, 5, 6, 9,
                                   1, 9, 0, 0, 0, 9}, {3, 6});
  EXPECT_EQ(to_vector<int64_t>(caption_targets(ids, 9)),
            (std::vector<int64_t>{4, 5, 9, -100, -100,
                                  3, 4, 5, 6, 9,
                                  9, -100, -100, -100, -100}));
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

TEST(Itm, LossIsCrossEntropyOverPositiveAndNegativePairs) {
  Generator gen(2);
  ModelConfig c = preset("clip-tiny");
  c.text_width = c.vision_width = 16;
  c.text_heads = 2;
  c.fusion_layers = 1;
  FusionTransformer fusion(c, gen);
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
}
