// Images per second of the data path: decoding (stb), preprocessing (resize + crop +
// normalise, with and without training augmentation) and the background loader with 1 and 2
// worker threads building whole batches, for 256x256 photos-like PNGs at 224 (CLIP's input)
// and 64x64 emoji-like PNGs at 32 (the emoji preset). Images are generated into a temporary
// folder first (smooth gradients with noise, so PNG compression is realistic).
#include <chrono>
#include <filesystem>
#include <fstream>

#include "bench/bench_common.h"
#include "core/rng.h"
#include "data/bpe.h"
#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/loader.h"

using namespace mmgrad;
namespace fs = std::filesystem;

namespace {

std::string make_images(const std::string& dir, int n, int size) {
  fs::create_directories(dir);
  std::ofstream table(dir + "/table.tsv");
  table << "filepath\ttitle\n";
  for (int i = 0; i < n; ++i) {
    data::Image img;
    img.width = img.height = size;
    img.pixels.resize(static_cast<size_t>(size * size * 3));
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        for (int c = 0; c < 3; ++c) {
          const double noise = Philox::uniform(static_cast<uint64_t>(i), static_cast<uint64_t>((y * size + x) * 3 + c)) * 24;
          img.pixels[static_cast<size_t>((y * size + x) * 3 + c)] =
              static_cast<uint8_t>(std::min(255.0, (x * (c + 1) + y * (3 - c) + 40 * i) % 200 + noise));
        }
    const std::string name = "img" + std::to_string(i) + ".png";
    data::write_png(dir + "/" + name, img);
    table << name << "\ta generated picture number " << i << "\n";
  }
  return dir + "/table.tsv";
}

double per_second(int64_t items, const std::function<void()>& fn) {
  const double ms = bench::median_ms(fn, 3, 1);
  return static_cast<double>(items) / (ms / 1000);
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  bench::print_header("data loader throughput (images/s)");
  if (!data::image_decoding_available()) {
    fmt::print("built without libstb: nothing to measure\n");
    return 0;
  }
  const std::string root = (fs::temp_directory_path() / ("mmgrad_bench_loader_" + std::to_string(::getpid()))).string();
  struct Case { const char* name; int source, target, count; };
  const data::BpeTokenizer tok;
  fmt::print("{:<26} {:>10} {:>12} {:>12} {:>14} {:>14}\n", "images", "decode", "+eval prep", "+train aug",
             "loader 1 thr", "loader 2 thr");
  for (const Case& c : {Case{"256x256 PNG -> 224", 256, 224, 64}, Case{"64x64 PNG -> 32", 64, 32, 256}}) {
    const std::string path = make_images(root + "/" + std::to_string(c.source), c.count, c.source);
    const data::CaptionTable table = data::read_caption_table(path);
    data::Preprocess pre = data::clip_preprocess(c.target);
    std::vector<float> out(static_cast<size_t>(3 * c.target * c.target));
    const double decode = per_second(c.count, [&] {
      for (const auto& r : table.rows) data::decode_image_file(r.image_path);
    });
    const double eval = per_second(c.count, [&] {
      for (const auto& r : table.rows) data::preprocess_eval(data::decode_image_file(r.image_path), pre, out.data());
    });
    const double train = per_second(c.count, [&] {
      uint64_t k = 0;
      for (const auto& r : table.rows) data::preprocess_train(data::decode_image_file(r.image_path), pre, ++k, out.data());
    });
    double loader_rate[2];
    for (int workers = 1; workers <= 2; ++workers) {
      data::LoaderOptions o;
      o.workers = workers;
      o.prefetch = 4;
      data::ImageTextLoader loader(table, pre, tok, 32, 0, o);
      const int64_t B = 32, batches = 3 * c.count / B;
      loader.batch(0, B);  // starts the workers
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t b = 1; b <= batches; ++b) loader.batch(b * B, B);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      loader_rate[workers - 1] = static_cast<double>(batches * B) / s;
    }
    fmt::print("{:<26} {:>10.0f} {:>12.0f} {:>12.0f} {:>14.0f} {:>14.0f}\n", c.name, decode, eval, train, loader_rate[0],
               loader_rate[1]);
  }
  fs::remove_all(root);
  fmt::print("(decode and preprocessing on one thread; the loader builds whole batches of 32 on its own threads)\n");
  return 0;
}
