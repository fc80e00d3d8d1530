// Image decoding (PNG, JPEG, BMP, GIF, ... through stb_image and our wrapper), with the pixel
// limit checked from the header before any pixel memory is allocated, then the resize and
// crop steps of the preprocessing, which must accept any decoded size (1 x N included).
#include "data/image.h"
#include "data/image_transform.h"
#include "fuzz/fuzz_input.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!data::image_decoding_available()) return 0;  // built without stb: nothing to fuzz
  data::DecodeOptions options;
  options.max_pixels = int64_t{1} << 16;  // 256 x 256: small, so the limit itself is exercised, and fast
  data::Image image;
  bool ok = fuzz::parses_or_refuses_clearly([&] { image = data::decode_image_memory(data, size, "input.img", options); },
                                            "input.img");
  if (!ok) return 0;
  fuzz::require(image.width > 0 && image.height > 0, "a decoded image is not empty");
  fuzz::require(image.width * image.height <= options.max_pixels, "the pixel limit holds");
  fuzz::require(image.pixels.size() == static_cast<size_t>(image.width * image.height * 3), "pixels are RGB");
  data::Image small = data::resize_shorter_side(image, 8, data::Interpolation::Bicubic);
  data::Image square = data::center_crop(small, 8, 8);
  fuzz::require(square.width == 8 && square.height == 8, "resize + center crop gives the asked size");
  return 0;
}
