#include "apps/run_report.h"

#include <filesystem>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "data/caption_table.h"
#include "data/image.h"
#include "data/shapes.h"
#include "eval/report.h"
#include "train/run_files.h"
#include "train/trainer.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kSamples = 24;

std::vector<eval::ReportSample> file_samples(const std::vector<std::string>& paths,
                                             const std::vector<std::string>& captions, const train::RunConfig& c) {
  std::vector<eval::ReportSample> out;
  const data::Preprocess input = train::preprocess_from_config(c);
  data::Preprocess display = input;
  display.mean = {0, 0, 0};
  display.std = {1, 1, 1};
  const int64_t n = static_cast<int64_t>(paths.size()), m = std::min(n, kSamples);
  const int64_t S = c.model.image_size;
  for (int64_t k = 0; k < m; ++k) {
    const size_t i = static_cast<size_t>(k * n / m);  // evenly spread: tables are often sorted by class
    const data::Image img = data::decode_image_file(paths[i], train::decode_options(c));
    std::vector<float> a(static_cast<size_t>(3 * S * S)), b(a.size());
    data::preprocess_eval(img, input, a.data());
    data::preprocess_eval(img, display, b.data());
    out.push_back({from_data(b, {3, S, S}), from_data(a, {3, S, S}), captions[i]});
  }
  return out;
}

}  // namespace

int64_t write_run_report(const std::string& path, const std::string& run_dir, const nn::ClipModel& model,
                         const data::Tokenizer& tokenizer, const train::RunConfig& c, const std::string& eval_json,
                         const std::string& eval_text, const std::string& data_path) {
  eval::ReportInputs in;
  in.title = fmt::format("mmgrad run {} — model {}", fs::path(run_dir).filename().string(), c.model.name);
  in.metrics_path = train::metrics_path(run_dir);
  in.figures_json = eval_json;
  in.figures_text = eval_text;
  if (data_path.empty()) {
    const data::ShapesDataset held_out(data::Split::HeldOut, kSamples, c.seed, c.model.image_size);
    for (int64_t i = 0; i < kSamples; ++i) {
      const data::ShapesSample s = held_out.get(i);
      in.samples.push_back({s.image, s.image, s.caption});
    }
  } else if (fs::is_directory(data_path)) {
    const data::ClassFolder folder = data::read_class_folder(data_path);
    std::vector<std::string> names;
    for (int64_t label : folder.labels) names.push_back(folder.class_names[static_cast<size_t>(label)]);
    in.samples = file_samples(folder.image_paths, names, c);
  } else {
    const data::CaptionTable table = data::read_caption_table(data_path, train::table_options(c));
    std::vector<std::string> paths, captions;
    for (const auto& r : table.rows) paths.push_back(r.image_path), captions.push_back(r.caption);
    in.samples = file_samples(paths, captions, c);
  }
  return eval::write_report(path, model, tokenizer, in);
}

}  // namespace mmgrad::apps
