// Run configuration: presets, key=value settings with helpful errors, JSON round trip.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/suggest.h"
#include "train/run_config.h"

using namespace mmgrad;
using namespace mmgrad::train;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Suggest, EditDistanceAndNearestName) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
  EXPECT_EQ(nearest_name("visoin_width", {"vision_width", "text_width", "lr"}), "vision_width");
  EXPECT_EQ(nearest_name("zzzzzz", {"lr", "steps"}), "");  // too far to be a typo
  EXPECT_EQ(nearest_name(std::string(1 << 20, 'x'), {"lr", "steps"}), "");  // no suggestion, and no length^2 work
  EXPECT_EQ(nearest_name("steps_", {"lr", "steps"}), "steps");
}

TEST(RunConfig, PresetsHaveTheSpecShapes) {
  RunConfig tiny = run_preset("clip-tiny");
  EXPECT_EQ(tiny.model.vision_width, 128);
  EXPECT_EQ(tiny.model.fusion_layers, 2);
  EXPECT_EQ(tiny.batch_size, 128);
  EXPECT_EQ(tiny.w_caption, 0);
  RunConfig b32 = run_preset("clip-b32");
  EXPECT_EQ(b32.model.vision_width, 768);
  EXPECT_EQ(b32.batch_size, 256);
  EXPECT_EQ(b32.w_itm, 0);  // clip-b32 has no fusion layers
  RunConfig small = run_preset("shapes-small");
  EXPECT_GT(small.model.caption_layers, 0);
  EXPECT_GT(small.w_caption, 0);
  RunConfig mnist = run_preset("mnist");
  EXPECT_EQ(mnist.dataset, "datasets/mnist/train.tsv");
  EXPECT_EQ(mnist.eval_dataset, "datasets/mnist/test");
  EXPECT_EQ(mnist.model.image_size, 28);
  EXPECT_EQ(mnist.model.image_size % mnist.model.patch_size, 0);
  RunConfig emoji = run_preset("emoji");
  EXPECT_EQ(emoji.eval_dataset, "datasets/emoji/test.tsv");
  EXPECT_EQ(emoji.model.vision_width, small.model.vision_width);  // the shapes-small model on real images
  EXPECT_NE(error_of([] { run_preset("clip-huge"); }).find("known: shapes-small, mnist, emoji, clip-tiny, clip-b32"),
            std::string::npos);
}

TEST(RunConfig, SetsKeysOfEveryType) {
  RunConfig c = run_preset("shapes-small");
  set_assignment(c, "steps=42");
  set_assignment(c, "lr=3e-4");
  set_assignment(c, "hard_negatives=false");
  set_assignment(c, "activation=quick_gelu");
  set_assignment(c, "seed=18446744073709551615");  // seeds are unsigned 64-bit... as text
  EXPECT_EQ(c.steps, 42);
  EXPECT_DOUBLE_EQ(c.lr, 3e-4);
  EXPECT_FALSE(c.hard_negatives);
  EXPECT_EQ(c.model.activation, "quick_gelu");
}

TEST(RunConfig, BadKeysAndValuesAreNamed) {
  RunConfig c;
  EXPECT_NE(error_of([&] { set_assignment(c, "visoin_width=64"); }).find("did you mean 'vision_width'"), std::string::npos);
  EXPECT_NE(error_of([&] { set_assignment(c, "steps=ten"); }).find("'steps' expects an integer, got 'ten'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { set_assignment(c, "steps=0"); }).find("at least 1"), std::string::npos);
  EXPECT_NE(error_of([&] { set_assignment(c, "lr=nan"); }).find("'lr' expects a finite number"), std::string::npos);
  EXPECT_NE(error_of([&] { set_assignment(c, "hard_negatives=maybe"); }).find("true or false"), std::string::npos);
  EXPECT_NE(error_of([&] { set_assignment(c, "steps"); }).find("key=value"), std::string::npos);
  // Integers must survive config.json (JSON numbers hold integers exactly up to 2^53).
  EXPECT_NE(error_of([&] { set_assignment(c, "steps=999999999999909132"); }).find("at most 9007199254740992"),
            std::string::npos);
  set_assignment(c, "steps=9007199254740992");
  RunConfig again;
  apply_json(again, to_json(c));
  EXPECT_EQ(again.steps, int64_t{1} << 53);
}

TEST(RunConfig, ValidateChecksFieldsTogether) {
  RunConfig c = run_preset("shapes-small");
  c.model.vision_heads = 5;  // 96 is not divisible by 5
  EXPECT_NE(error_of([&] { validate(c); }).find("vision_width 96 is not divisible by vision_heads 5"), std::string::npos);
  c = run_preset("shapes-small");
  c.accum_steps = 3;  // 128 / 3 is not whole
  EXPECT_NE(error_of([&] { validate(c); }).find("accum_steps 3"), std::string::npos);
  c = run_preset("clip-b32");
  c.w_itm = 1;
  EXPECT_NE(error_of([&] { validate(c); }).find("fusion_layers"), std::string::npos);
  c = run_preset("shapes-small");
  c.optimizer = "adam";
  EXPECT_NE(error_of([&] { validate(c); }).find("optimizer 'adam'"), std::string::npos);
  c = run_preset("shapes-small");
  c.device = "tpu";
  EXPECT_NE(error_of([&] { validate(c); }).find("device must be cpu or cuda, not 'tpu'"), std::string::npos);
  c = run_preset("shapes-small");
  c.matmul_precision = "bf16";  // on the CPU
  EXPECT_NE(error_of([&] { validate(c); }).find("matmul_precision bf16 needs device=cuda"), std::string::npos);
  c.device = "cuda";
  EXPECT_NO_THROW(validate(c));
  c.matmul_precision = "fp8";
  EXPECT_NE(error_of([&] { validate(c); }).find("matmul_precision must be f32, tf32 or bf16"), std::string::npos);
  c = run_preset("shapes-small");
  set_assignment(c, "cuda_graph=true");  // on the CPU
  EXPECT_NE(error_of([&] { validate(c); }).find("cuda_graph needs device=cuda"), std::string::npos);
  c.device = "cuda";
  EXPECT_NO_THROW(validate(c));
  c.detect_anomaly = true;
  EXPECT_NE(error_of([&] { validate(c); }).find("cuda_graph and detect_anomaly do not go together"), std::string::npos);
  EXPECT_NO_THROW(validate(run_preset("shapes-small")));
}

TEST(RunConfig, JsonRoundTripKeepsEveryKey) {
  RunConfig c = run_preset("shapes-small");
  set_assignment(c, "lr=0.00025");
  set_assignment(c, "contrastive=siglip");
  set_assignment(c, "tie_lm_head=false");
  set_assignment(c, "seed=12345678901");
  const std::string text = to_json(c);
  RunConfig back;  // defaults differ from the preset: every key must come from the text
  apply_json(back, text);
  EXPECT_EQ(to_json(back), text);
  EXPECT_EQ(back.model.name, "shapes-small");
  EXPECT_DOUBLE_EQ(back.lr, 0.00025);
  EXPECT_EQ(back.seed, 12345678901u);
  // A partial file sets only its keys; unknown keys fail.
  RunConfig partial = run_preset("shapes-small");
  apply_json(partial, R"({"steps": 7, "w_caption": 0.5})");
  EXPECT_EQ(partial.steps, 7);
  EXPECT_DOUBLE_EQ(partial.w_caption, 0.5);
  EXPECT_EQ(partial.model.vision_width, 96);
  EXPECT_NE(error_of([&] { apply_json(partial, R"({"stpes": 7})"); }).find("did you mean 'steps'"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_json(partial, R"({"steps": [1]})"); }).find("'steps'"), std::string::npos);
}
