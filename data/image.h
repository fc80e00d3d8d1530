// Decoded images: 8-bit RGB pixels in memory, read from PNG, JPEG, BMP or GIF files with
// stb_image (Debian's libstb) and written as PNG.
//
// Decoding always yields 3 channels: grey is replicated, and an alpha channel is composited
// onto a background colour (emoji PNGs are mostly transparent; black would be a poor
// default there, so the default is white). A GIF gives its first frame. The size is checked
// from the header before any pixel memory is allocated, so a hostile file cannot ask for
// gigabytes. Every error names the file.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mmgrad::data {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height x width x 3 (RGB), row-major
  uint8_t at(int64_t y, int64_t x, int c) const { return pixels[static_cast<size_t>((y * width + x) * 3 + c)]; }
  bool empty() const { return width == 0 || height == 0; }
};

struct DecodeOptions {
  std::array<uint8_t, 3> background = {255, 255, 255};  // what transparent pixels become
  int64_t max_pixels = int64_t{1} << 26;                // 64 Mpixel: larger files are refused
};

// Whether this build can decode images (false when built without libstb).
bool image_decoding_available();

// Throws mmgrad::Error naming `path` for a missing, unreadable, corrupt, truncated or
// oversized file.
Image decode_image_file(const std::string& path, const DecodeOptions& options = {});
// `name` only labels errors (e.g. the file the bytes came from).
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                          const DecodeOptions& options = {});

// PNG, written to a temporary file and renamed (a reader never sees half a file).
void write_png(const std::string& path, const Image& image);
// The PNG file's bytes in memory (`name` labels errors).
std::string encode_png(const Image& image, const std::string& name = "image");

}  // namespace mmgrad::data
