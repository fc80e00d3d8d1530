// report.html: one self-contained page per run (no network, no external files), written
// after training and after `mmgrad eval`: loss and learning-rate curves from metrics.jsonl,
// the evaluation's figures as bars, retrieval examples (a caption's top-5 images, the right
// one marked), generated captions under their images, and the ViT's attention maps. Images
// are embedded as PNG data; the charts are inline SVG; a few lines of script check that
// every image decoded and write the result into the page (#render-check).
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"
#include "models/clip.h"

namespace mmgrad::eval {

struct ReportSample {
  Tensor display;       // f32 [3, S, S] in [0, 1]: what the page shows
  Tensor input;         // f32 [3, S, S]: what the model reads (normalised as in training)
  std::string caption;  // the reference caption (or the class name)
};

struct ReportInputs {
  std::string title;
  std::string metrics_path;  // metrics.jsonl; a missing file means no curves
  std::string figures_json;  // the evaluation's JSON: every fraction in it becomes a bar
  std::string figures_text;  // the evaluation's printed report
  std::vector<ReportSample> samples;
  int64_t retrieval_queries = 4, captions = 8, attention_maps = 6;
};

// Writes the page to `path` (temporary file, then rename). Returns the number of images in it.
int64_t write_report(const std::string& path, const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                     const ReportInputs& inputs);

// The parts, for tests: base64 of bytes, and an SVG line chart of (x, y) series.
std::string base64(const std::string& bytes);
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series, bool log_y = false);

}  // namespace mmgrad::eval
