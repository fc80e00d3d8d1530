#include "apps/shapes_export.h"

#include <filesystem>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/image.h"
#include "data/shapes.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;

namespace {
data::Image to_image(const Tensor& chw) {  // f32 [3, S, S] in [0, 1] -> 8-bit RGB
  const int64_t S = chw.shape()[1];
  const std::vector<float> v = to_vector<float>(chw);
  data::Image img;
  img.width = img.height = S;
  img.pixels.resize(static_cast<size_t>(S * S * 3));
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x)
      for (int c = 0; c < 3; ++c) {
        const float f = v[static_cast<size_t>((c * S + y) * S + x)];
        img.pixels[static_cast<size_t>((y * S + x) * 3 + c)] =
            static_cast<uint8_t>(std::lround(std::min(1.0f, std::max(0.0f, f)) * 255.0f));
      }
  return img;
}
}  // namespace

ShapesExport export_shapes(const std::string& dir, int64_t count, bool held_out, uint64_t seed, int64_t image_size) {
  if (count < 1) fail("mmgrad data shapes", "--count must be at least 1");
  if (!data::image_decoding_available()) fail("mmgrad data shapes", "this build has no PNG writer (built without libstb)");
  const data::ShapesDataset set(held_out ? data::Split::HeldOut : data::Split::Train, count, seed, image_size);
  fs::create_directories(fs::path(dir) / "images");
  ShapesExport e;
  std::string table = "filepath\ttitle\n";
  for (int64_t i = 0; i < count; ++i) {
    const data::ShapesSample s = set.get(i);
    const std::string name = fmt::format("{:05d}.png", i);
    const data::Image img = to_image(s.image);
    data::write_png((fs::path(dir) / "images" / name).string(), img);
    table += "images/" + name + "\t" + s.caption + "\n";
    ++e.images;
    if (s.objects.size() == 1) {
      const fs::path cls = fs::path(dir) / "classes" / data::shape_names()[static_cast<size_t>(s.objects[0].shape)];
      fs::create_directories(cls);
      data::write_png((cls / name).string(), img);
      ++e.class_images;
    }
  }
  write_file_atomically((fs::path(dir) / "captions.tsv").string(), "caption table", [&](std::ostream& out) { out << table; });
  return e;
}

}  // namespace mmgrad::apps
