// Parity with PyTorch: tools/torch_reference/make_parity_case.py (run with Debian's
// python3-torch) builds the models of ../shared/spec/MODELS.md with the same parameter
// names, random weights and inputs, and writes the weights, inputs, losses and every
// parameter's gradient (computed in float64) to a safetensors file. Here mmgrad loads the
// weights by name, runs the same objectives in float32, and every loss part, both
// embeddings and every gradient must agree to a relative error below 1e-4:
//   rel(tensor) = max |mmgrad - torch| / max |torch|.
// The set of parameter names must be identical (a missing or extra parameter fails).
//
// Without torch the test is skipped, or fails when CI is set (scripts/test.sh installs
// python3-torch). MMGRAD_PYTHON picks the interpreter (default /usr/bin/python3, the one
// Debian's python3-torch is installed for); MMGRAD_SOURCE_DIR the source tree.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/json.h"
#include "models/clip.h"
#include "models/losses.h"
#include "models/objectives.h"
#include "tests/core/test_util.h"
#include "train/safetensors.h"

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {

constexpr double kTolerance = 1e-4;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string python() { return env_or("MMGRAD_PYTHON", "/usr/bin/python3"); }

std::string source_dir() {
#ifdef MMGRAD_SOURCE_DIR
  return env_or("MMGRAD_SOURCE_DIR", MMGRAD_SOURCE_DIR);
#else
  return env_or("MMGRAD_SOURCE_DIR", ".");
#endif
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "0" && std::string(ci) != "false";
}

// Runs a shell command; returns its exit status and appends its output (stdout + stderr).
int run(const std::string& cmd, std::string& output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The reference file, generated once per test program. Empty with `skip` or `error` set
// when torch is missing or the script fails.
struct Reference {
  std::string path, skip, error;
  train::SafetensorsFile file;
  std::map<std::string, Tensor> by_name;
};

const Reference& reference() {
  static Reference ref = [] {
    Reference r;
    std::string out;
    if (run(shell_quote(python()) + " -c 'import torch, numpy'", out) != 0) {
      const std::string msg = "PyTorch is not importable by " + python() +
                              " (install Debian's python3-torch: apt-get install --no-install-recommends "
                              "python3-torch, or run scripts/test.sh, which does): " + out;
      (in_ci() ? r.error : r.skip) = msg;
      return r;
    }
    r.path = mmtest::temp_path("torch_parity.safetensors");
    const std::string script = source_dir() + "/tools/torch_reference/make_parity_case.py";
    out.clear();
    if (run(shell_quote(python()) + " " + shell_quote(script) + " " + shell_quote(r.path), out) != 0) {
      r.error = "the reference script failed: " + script + "\n" + out;
      return r;
    }
    std::printf("%s", out.c_str());
    r.file = train::load_safetensors(r.path);
    std::remove(r.path.c_str());
    for (auto& [name, t] : r.file.tensors) r.by_name[name] = t;
    return r;
  }();
  return ref;
}

#define REQUIRE_REFERENCE()                                   \
  const Reference& ref = reference();                         \
  if (!ref.error.empty()) FAIL() << ref.error;                \
  if (!ref.skip.empty()) GTEST_SKIP() << ref.skip;

const Tensor& get(const Reference& ref, const std::string& name) {
  auto it = ref.by_name.find(name);
  if (it == ref.by_name.end()) throw std::runtime_error("the reference file has no tensor " + name);
  return it->second;
}

std::string meta(const Reference& ref, const std::string& key) {
  auto it = ref.file.metadata.find(key);
  if (it == ref.file.metadata.end()) throw std::runtime_error("the reference file has no metadata " + key);
  return it->second;
}

// models/config.h fields from the script's JSON (booleans as 0/1); a field this test does not know fails, so a
// config option added on one side only cannot pass silently.
ModelConfig config_from_json(const std::string& text) {
  ModelConfig c = preset("clip-tiny");
  json::Value v = json::Value::parse(text);
  std::map<std::string, int64_t*> ints = {
      {"image_size", &c.image_size},       {"patch_size", &c.patch_size},     {"vision_width", &c.vision_width},
      {"vision_layers", &c.vision_layers}, {"vision_heads", &c.vision_heads}, {"context_length", &c.context_length},
      {"vocab_size", &c.vocab_size},       {"text_width", &c.text_width},     {"text_layers", &c.text_layers},
      {"text_heads", &c.text_heads},       {"embed_dim", &c.embed_dim},       {"fusion_layers", &c.fusion_layers},
      {"caption_layers", &c.caption_layers}, {"eot_token_id", &c.eot_token_id}, {"batch_size", &c.batch_size}};
  std::map<std::string, std::string*> strings = {
      {"name", &c.name}, {"activation", &c.activation}, {"contrastive", &c.contrastive}};
  for (const auto& [key, val] : v.as_object("config")) {
    if (auto i = ints.find(key); i != ints.end()) *i->second = val.as_int(key.c_str());
    else if (auto s = strings.find(key); s != strings.end()) *s->second = val.as_string(key.c_str());
    else if (key == "tie_lm_head") c.tie_lm_head = val.as_int("tie_lm_head") != 0;
    else throw std::runtime_error("unknown config field in the reference: " + key);
  }
  return c;
}

double rel_error(const Tensor& got, const Tensor& want) {
  std::vector<double> a = to_vector<double>(got), b = to_vector<double>(want);
  if (a.size() != b.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  if (std::isnan(diff)) return INFINITY;
  return diff / std::max(scale, 1e-30);
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : to_vector<double>(t)) m = std::max(m, std::abs(x));
  return m;
}

struct Worst {
  std::string name;
  double rel = 0;
  void add(const std::string& n, double r) {
    if (r > rel || name.empty()) name = n, rel = r;
  }
};

// One case: load, run mmgrad's objectives in float32, compare.
void check_case(const Reference& ref, const std::string& tag) {
  SCOPED_TRACE("case " + tag);
  const std::string p = tag + "/";
  ModelConfig c = config_from_json(meta(ref, tag + ".config"));
  Generator gen(7);
  ClipModel model(c, gen);

  // Names: identical sets.
  std::set<std::string> ours, theirs;
  for (const auto& [name, t] : model.named_parameters()) ours.insert(name);
  for (const auto& [name, t] : ref.file.tensors)
    if (name.rfind(p + "param.", 0) == 0) theirs.insert(name.substr(p.size() + 6));
  for (const auto& n : ours)
    EXPECT_TRUE(theirs.count(n)) << "mmgrad has parameter " << n << ", the PyTorch model does not";
  for (const auto& n : theirs)
    EXPECT_TRUE(ours.count(n)) << "the PyTorch model has parameter " << n << ", mmgrad does not";
  ASSERT_EQ(ours, theirs);

  {
    NoGradGuard no_grad;
    for (auto& [name, t] : model.named_parameters()) {
      const Tensor& w = get(ref, p + "param." + name);
      ASSERT_EQ(t.shape(), w.shape()) << name;
      copy_(t, w);
    }
  }
  Tensor images = get(ref, p + "input.images");
  Tensor ids = get(ref, p + "input.ids");
  json::Value wv = json::Value::parse(meta(ref, tag + ".weights"));
  const double w_con = wv.find("contrastive")->as_number("contrastive"), w_itm = wv.find("itm")->as_number("itm"),
               w_cap = wv.find("caption")->as_number("caption");
  const std::string negatives = meta(ref, tag + ".negatives");

  std::vector<std::pair<std::string, Tensor>> parts;
  Tensor total;
  if (negatives == "cyclic") {
    // The path training and the benchmark use: compute_losses with cyclic image negatives.
    Losses l = compute_losses(model, images, ids, {w_con, w_itm, w_cap, /*hard_negatives=*/false}, gen);
    parts = l.parts;
    total = l.total;
  } else {
    ASSERT_EQ(negatives, "given");
    auto vis = model.vision_model.forward(images);
    auto txt = model.text_model.forward(ids);
    Tensor img = l2_normalize(model.visual_projection.forward(vis.pooled));
    Tensor tx = l2_normalize(model.text_projection.forward(txt.pooled));
    const bool siglip = c.contrastive == "siglip";
    parts.emplace_back(siglip ? "siglip" : "clip", siglip ? siglip_loss(img, tx, model.logit_scale, model.logit_bias)
                                                        : clip_loss(img, tx, model.logit_scale));
    parts.emplace_back("itm", itm_loss(*model.fusion_model, txt.last_hidden_state, vis.last_hidden_state,
                                       to_vector<int64_t>(get(ref, p + "input.neg_image")),
                                       to_vector<int64_t>(get(ref, p + "input.neg_text"))));
    parts.emplace_back("caption", caption_loss(model.caption_model->forward(txt.last_hidden_state, vis.last_hidden_state),
                                               ids, c.eot_token_id));
    total = add(add(mul(parts[0].second, w_con), mul(parts[1].second, w_itm)), mul(parts[2].second, w_cap));
  }
  total.backward();

  Worst worst_loss, worst_grad;
  std::ostringstream table;
  auto check = [&](const std::string& what, const Tensor& got, const Tensor& want, Worst& worst) {
    ASSERT_EQ(got.shape(), want.shape()) << what;
    const double r = rel_error(got, want);
    worst.add(what, r);
    EXPECT_LT(r, kTolerance) << what << ": relative error " << r << " (max |torch| " << max_abs(want) << ")";
  };
  for (const auto& [name, loss] : parts) check("loss." + name, loss, get(ref, p + "loss." + name), worst_loss);
  check("loss.total", total, get(ref, p + "loss.total"), worst_loss);
  {
    NoGradGuard no_grad;
    check("out.image_embeds", model.encode_image(images), get(ref, p + "out.image_embeds"), worst_loss);
    check("out.text_embeds", model.encode_text(ids), get(ref, p + "out.text_embeds"), worst_loss);
  }
  // Gradients. k_proj.bias is the one exception to the plain relative error: its exact
  // gradient is zero (adding a constant to every key shifts each query's scores by one
  // constant, which softmax ignores), so torch's float64 values are rounding noise and a
  // relative error is meaningless. There mmgrad's gradient must be tiny against the
  // largest gradient of the same attention's q_proj.bias, and is reported separately.
  Worst worst_zero;
  int compared = 0;
  for (const auto& [name, t] : model.named_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << name << " received no gradient in mmgrad";
    const Tensor& want = get(ref, p + "grad." + name);
    ++compared;
    const std::string suffix = "k_proj.bias";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string q = name.substr(0, name.size() - suffix.size()) + "q_proj.bias";
      const double scale = max_abs(get(ref, p + "grad." + q));
      ASSERT_LT(max_abs(want), 1e-12 * scale) << name << ": torch's gradient should vanish";
      const double r = max_abs(t.grad()) / scale;
      worst_zero.add(name, r);
      EXPECT_LT(r, kTolerance) << name << ": |grad| " << max_abs(t.grad()) << " against q_proj.bias's " << scale;
      continue;
    }
    check("grad." + name, t.grad(), want, worst_grad);
  }
  EXPECT_EQ(compared, static_cast<int>(theirs.size()));
  std::printf("[parity %s] %d gradients compared; worst relative error: losses/embeddings %.3g (%s), "
              "gradients %.3g (%s); k_proj.bias (exactly 0 in theory) max |grad| / max |q_proj.bias grad| "
              "%.3g (%s)\n",
              tag.c_str(), compared, worst_loss.rel, worst_loss.name.c_str(), worst_grad.rel,
              worst_grad.name.c_str(), worst_zero.rel, worst_zero.name.c_str());
  ::testing::Test::RecordProperty("worst_grad_rel_error", std::to_string(worst_grad.rel));
  ::testing::Test::RecordProperty("worst_grad_tensor", worst_grad.name);
}

}  // namespace

// clip-tiny (MODELS.md) with its 2 fusion layers and a 2-layer caption decoder (own
// lm_head): CLIP + ITM (cyclic negatives, through compute_losses) + caption.
TEST(TorchParity, ClipTinyWithFusionAndCaption) {
  REQUIRE_REFERENCE();
  check_case(ref, "clip_fusion_caption");
}

// SigLIP (logit_bias), quick_gelu, lm_head tied to the token embedding, texts shorter than
// the context, ITM with given image and text negatives, weighted objectives.
TEST(TorchParity, SiglipTiedLmHeadGivenNegatives) {
  REQUIRE_REFERENCE();
  check_case(ref, "siglip_tied");
}
