#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/json.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "eval/embedding.h"

namespace mmgrad::eval {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string img_tag(const data::Image& img, const std::string& alt, const std::string& cls = "") {
  return fmt::format(R"(<img class="px{}" alt="{}" src="data:image/png;base64,{}">)", cls.empty() ? "" : " " + cls,
                     escape(alt), base64(data::encode_png(img)));
}

// The image with its attention map laid over it: attended patches keep their colour, the
// rest fades to dark blue.
data::Image attention_overlay(const data::Image& img, const std::vector<float>& att, int64_t grid) {
  float top = 0;
  for (float a : att) top = std::max(top, a);
  data::Image out = img;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x) {
      const int64_t gy = std::min(grid - 1, y * grid / img.height), gx = std::min(grid - 1, x * grid / img.width);
      const float w = top > 0 ? att[static_cast<size_t>(gy * grid + gx)] / top : 0;
      for (int c = 0; c < 3; ++c) {
        const float base = img.pixels[static_cast<size_t>((y * img.width + x) * 3 + c)];
        const float shade = c == 2 ? 90.0f : 20.0f;
        out.pixels[static_cast<size_t>((y * img.width + x) * 3 + c)] =
            static_cast<uint8_t>(std::lround(w * base + (1 - w) * shade));
      }
    }
  return out;
}

// Every number in [0, 1] of a JSON value, with its key path ("image_to_text.r1").
void fractions(const json::Value& v, const std::string& path, std::vector<std::pair<std::string, double>>& out) {
  if (v.is_number()) {
    const double x = v.as_number("");
    if (x >= 0 && x <= 1 && !path.empty()) out.emplace_back(path, x);
  } else if (v.is_object()) {
    for (const auto& [k, child] : v.as_object("")) fractions(child, path.empty() ? k : path + "." + k, out);
  } else if (v.is_array()) {
    // Recall lists are [R@1, R@5, R@10].
    const auto& items = v.as_array("");
    for (size_t i = 0; i < items.size(); ++i)
      fractions(items[i], items.size() == 3 ? fmt::format("{} R@{}", path, i == 0 ? 1 : i == 1 ? 5 : 10)
                                            : fmt::format("{}[{}]", path, i), out);
  }
}

std::vector<ChartSeries> read_curves(const std::string& metrics_path, ChartSeries& lr) {
  std::ifstream in(metrics_path);
  std::vector<ChartSeries> out;
  std::string line;
  const std::vector<std::string> skip = {"step", "lr", "grad_norm", "logit_scale", "ms", "data_ms", "samples_per_s",
                                         "skipped", "ranks", "comm_ms"};
  while (std::getline(in, line)) {
    json::Value v;
    try {
      v = json::Value::parse(line);
    } catch (const Error&) {
      continue;  // a torn last line
    }
    const json::Value* step = v.find("step");
    if (!step || !v.find("loss")) continue;
    const double s = step->as_number("");
    if (const json::Value* r = v.find("lr")) lr.points.emplace_back(s, r->as_number(""));
    for (const auto& member : v.as_object("")) {
      const std::string& k = member.first;  // a plain reference: clang 14 cannot capture a structured binding
      const json::Value& x = member.second;
      if (!x.is_number() || std::find(skip.begin(), skip.end(), k) != skip.end()) continue;
      auto it = std::find_if(out.begin(), out.end(), [&](const ChartSeries& c) { return c.name == k; });
      if (it == out.end()) {
        out.push_back({k, {}});
        it = out.end() - 1;
      }
      it->points.emplace_back(s, x.as_number(""));
    }
  }
  return out;
}

const char* kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.bar { display: flex; align-items: center; gap: 8px; margin: 2px 0; font-size: 0.9em; }
.bar .label { width: 260px; text-align: right; color: #444; }
.bar .track { width: 420px; height: 14px; background: #eee; }
.bar .fill { height: 14px; background: #4a7bd0; }
img.px { image-rendering: pixelated; width: 96px; height: 96px; border: 3px solid transparent; }
img.hit { border-color: #2a9d4b; }
.row { display: flex; align-items: flex-start; gap: 10px; margin: 10px 0; }
.query { width: 220px; font-size: 0.9em; }
figure { margin: 0; text-align: center; font-size: 0.75em; color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
.grid figure { width: 200px; }
pre { background: #f6f6f6; padding: 10px; font-size: 0.8em; overflow-x: auto; }
)";

// Checks in the browser that every image decoded and says so in the page.
const char* kCheckScript = R"(
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const charts = document.querySelectorAll('svg.chart').length;
  document.getElementById('render-check').textContent =
    broken === 0 ? `rendered: ${imgs.length} images, ${charts} charts` : `BROKEN: ${broken} of ${imgs.length} images`;
});
)";

}  // namespace

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t a = static_cast<uint8_t>(bytes[i]);
    const uint32_t b = i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) : 0;
    const uint32_t c = i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0;
    const uint32_t n = (a << 16) | (b << 8) | c;
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? k[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? k[n & 63] : '=';
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series, bool log_y) {
  const double W = 520, H = 260, left = 56, right = 110, top = 28, bottom = 36;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto fy = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, fy(y)), y1 = std::max(y1, fy(y));
    }
  std::string svg = fmt::format(R"(<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}">)", W, H);
  svg += fmt::format(R"(<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>)", left, escape(title));
  if (!std::isfinite(x0)) return svg + R"(<text x="60" y="120" font-size="12">no data</text></svg>)";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  const auto py = [&](double y) { return top + (1 - (fy(y) - y0) / (y1 - y0)) * (H - top - bottom); };
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)", left, top,
                     W - left - right, H - top - bottom);
  for (int t = 0; t <= 4; ++t) {  // y ticks
    const double v = y0 + (y1 - y0) * t / 4, yy = top + (1 - t / 4.0) * (H - top - bottom);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)", left - 4, yy + 3,
                       log_y ? fmt::format("{:.1e}", std::pow(10.0, v)) : fmt::format("{:.3g}", v));
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="10">step {}</text><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)",
                     left, H - 10, x0, W - right, H - 10, x1);
  static const char* colours[] = {"#333333", "#4a7bd0", "#d0704a", "#2a9d4b", "#9b59b6", "#c0a020"};
  for (size_t i = 0; i < series.size(); ++i) {
    std::string pts;
    for (const auto& [x, y] : series[i].points)
      if (std::isfinite(y)) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    const char* colour = colours[i % 6];
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.4" points="{}"/>)", colour, pts);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="{}">{}</text>)", W - right + 8, top + 14 + 16 * i,
                       colour, escape(series[i].name));
  }
  return svg + "</svg>";
}

int64_t write_report(const std::string& path, const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                     const ReportInputs& in) {
  NoGradGuard no_grad;
  int64_t images = 0;
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(in.title) +
                     "</title><style>" + kStyle + "</style></head><body>\n";
  html += "<h1>" + escape(in.title) + "</h1>\n<p id=\"render-check\">(rendering)</p>\n";

  // Curves.
  ChartSeries lr{"lr", {}};
  const std::vector<ChartSeries> curves = read_curves(in.metrics_path, lr);
  html += "<h2 id=\"curves\">Training curves</h2>\n<div class=\"charts\">";
  html += svg_line_chart("loss (total and each objective)", curves) + svg_line_chart("learning rate", {lr});
  html += "</div>\n";

  // Figures.
  html += "<h2 id=\"figures\">Evaluation</h2>\n";
  std::vector<std::pair<std::string, double>> bars;
  try {
    fractions(json::Value::parse(in.figures_json), "", bars);
  } catch (const Error&) {
  }
  for (const auto& [name, v] : bars)
    html += fmt::format(R"(<div class="bar"><span class="label">{}</span><span class="track"><div class="fill" style="width:{:.1f}%"></div></span><span>{:.1f}%</span></div>)",
                        escape(name), 100 * v, 100 * v) + "\n";
  html += "<pre>" + escape(in.figures_text) + "</pre>\n";

  const int64_t n = static_cast<int64_t>(in.samples.size());
  if (n > 0) {
    std::vector<Tensor> inputs, displays;
    for (const auto& s : in.samples) inputs.push_back(s.input), displays.push_back(s.display);
    const Tensor batch = stack(inputs, 0);
    std::vector<data::Image> shown;
    for (const Tensor& d : displays) shown.push_back(data::image_from_chw(d));

    // Retrieval: a caption against every sample image; its own image is the right answer
    // (and any image with the same caption).
    const Tensor img = embed_images(model, batch);
    html += "<h2 id=\"retrieval\">Retrieval: the top-5 images for a caption (green: a right answer)</h2>\n";
    std::vector<std::string> queries;
    for (int64_t i = 0; i < n && static_cast<int64_t>(queries.size()) < in.retrieval_queries; ++i)
      if (std::find(queries.begin(), queries.end(), in.samples[i].caption) == queries.end())
        queries.push_back(in.samples[i].caption);
    const auto best = top_k(matmul(embed_texts(model, tokenizer, queries), transpose(img, 0, 1)), 5);
    for (size_t q = 0; q < queries.size(); ++q) {
      html += "<div class=\"row retrieval\"><div class=\"query\">" + escape(queries[q]) + "</div>";
      for (const auto& [i, score] : best[q]) {
        const bool hit = in.samples[static_cast<size_t>(i)].caption == queries[q];
        html += "<figure>" + img_tag(shown[static_cast<size_t>(i)], in.samples[static_cast<size_t>(i)].caption, hit ? "hit" : "") +
                fmt::format("<figcaption>{:.3f}</figcaption></figure>", score);
        ++images;
      }
      html += "</div>\n";
    }

    // Captions.
    if (model.caption_model) {
      const int64_t m = std::min<int64_t>(in.captions, n);
      const std::vector<std::string> generated = caption_images(model, tokenizer, narrow(batch, 0, 0, m));
      html += "<h2 id=\"captions\">Generated captions</h2>\n<div class=\"grid\">";
      for (int64_t i = 0; i < m; ++i) {
        html += "<figure class=\"caption\">" + img_tag(shown[static_cast<size_t>(i)], in.samples[i].caption) +
                "<figcaption><b>" + escape(generated[static_cast<size_t>(i)]) + "</b><br>reference: " +
                escape(in.samples[i].caption) + "</figcaption></figure>";
        ++images;
      }
      html += "</div>\n";
    }

    // Attention maps: where the class token looks in the ViT's last layer.
    const int64_t m = std::min<int64_t>(in.attention_maps, n);
    const Tensor att = model.vision_model.class_attention(narrow(batch, 0, 0, m));
    const int64_t patches = att.shape()[1], grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(patches))));
    html += "<h2 id=\"attention\">Attention of the class token in the last ViT layer</h2>\n<div class=\"grid\">";
    for (int64_t i = 0; i < m; ++i) {
      const std::vector<float> a = to_vector<float>(select(att, 0, i));
      html += "<figure class=\"attention\">" + img_tag(shown[static_cast<size_t>(i)], in.samples[i].caption) +
              img_tag(attention_overlay(shown[static_cast<size_t>(i)], a, grid), "attention") + "<figcaption>" +
              escape(in.samples[i].caption) + "</figcaption></figure>";
      images += 2;
    }
    html += "</div>\n";
  }
  html += std::string("<script>") + kCheckScript + "</script>\n</body></html>\n";
  write_file_atomically(path, "report", [&](std::ostream& out) { out << html; });
  return images;
}

}  // namespace mmgrad::eval
