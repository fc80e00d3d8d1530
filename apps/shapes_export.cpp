#include "apps/shapes_export.h"

#include <filesystem>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/shapes.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;


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
    const data::Image img = data::image_from_chw(s.image);
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
