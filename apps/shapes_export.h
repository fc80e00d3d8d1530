// `mmgrad data shapes`: the built-in shapes dataset written as files, so that the commands
// that take images (embed, search, caption, zeroshot, eval --data) can be tried on the
// pictures the default model knows: DIR/images/NNNNN.png, DIR/captions.tsv (filepath, title)
// and DIR/classes/<shape>/NNNNN.png (the one-object images, a folder per shape).
#pragma once
#include <cstdint>
#include <string>

namespace mmgrad::apps {

struct ShapesExport {
  int64_t images = 0, class_images = 0;
};
ShapesExport export_shapes(const std::string& dir, int64_t count, bool held_out, uint64_t seed, int64_t image_size);

}  // namespace mmgrad::apps
