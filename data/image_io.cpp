// Image decoding and PNG writing with stb_image / stb_image_write (Debian's libstb, whose
// implementations live in libstb.so: nothing here defines STB_IMAGE_IMPLEMENTATION).
//
// Thread safety: decoding keeps all its state on the stack or in its own allocations. The
// one piece of global state stb has, the last failure reason, is thread-local in Debian's
// libstb (stb_image >= 2.24 defines STBI_THREAD_LOCAL; libstb.so has a TLS segment for it),
// so several loader threads may decode at once and each reads its own reason. We never
// touch stb's process-wide settings (vertical flip, PNG compression level), which are
// plain globals.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/jpeg_tables.h"
#include "data/image.h"

#ifdef MMGRAD_HAVE_STB
#include <stb_image.h>
#include <stb_image_write.h>
#endif

namespace mmgrad::data {
namespace {

constexpr const char* kOp = "image";

// Reads the whole file: stb then parses from memory, and the size is known before any
// decoding, so a truncated file shows up as too few bytes rather than a read error midway.
std::vector<uint8_t> read_whole_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(kOp, fmt::format("cannot open '{}' ({})", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(::fileno(f.get()), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(kOp, fmt::format("'{}' is a directory, not an image", path));
    // stb takes an int length; nothing near 2 GiB is a sane training image anyway.
    if (st.st_size > INT_MAX) fail(kOp, fmt::format("'{}' is too large ({} bytes)", path, st.st_size));
  }
  std::vector<uint8_t> bytes;
  if (st.st_size > 0) bytes.reserve(static_cast<size_t>(st.st_size));
  uint8_t chunk[64 * 1024];
  for (;;) {
    const size_t n = std::fread(chunk, 1, sizeof chunk, f.get());
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (n < sizeof chunk) break;
    if (bytes.size() > static_cast<size_t>(INT_MAX)) fail(kOp, fmt::format("'{}' is too large", path));
  }
  if (std::ferror(f.get())) fail(kOp, fmt::format("cannot read '{}' ({})", path, std::strerror(errno)));
  if (bytes.empty()) fail(kOp, fmt::format("'{}' is empty", path));
  return bytes;
}

#ifdef MMGRAD_HAVE_STB

enum class Format { Png, Jpeg, Bmp, Gif, Unknown };

// Sniffed from the magic bytes ourselves, so that stb's other formats (TGA has almost no
// signature) cannot claim random bytes: only the four documented formats are accepted.
Format sniff(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t len) { return n >= len && std::memcmp(d, magic, len) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return Format::Png;
  if (starts("\xff\xd8\xff", 3)) return Format::Jpeg;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return Format::Gif;
  if (starts("BM", 2)) return Format::Bmp;
  return Format::Unknown;
}

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }

// stb reads past the end of a BMP or GIF as zero bytes and reports success, so a cut file
// would decode into black or transparent rows. These checks catch that; JPEG truncation is
// reported by stb itself (a scan that runs out). For PNG every chunk must fit in the file:
// stb allocates an IDAT chunk's declared length before reading it, so a 100-byte file
// declaring a 2 GiB chunk made it allocate 2 GiB (found by fuzz/fuzz_image).
bool looks_truncated(Format format, const uint8_t* d, size_t n) {
  if (format == Format::Png) {
    for (size_t pos = 8; pos < n;) {
      if (n - pos < 12) return true;                       // length, type and CRC at least
      const uint64_t chunk = uint64_t{be32(d + pos)} + 12;  // + length, type, CRC fields
      if (chunk > n - pos) return true;
      if (std::memcmp(d + pos + 4, "IEND", 4) == 0) return false;
      pos += chunk;
    }
    return true;  // no IEND
  }
  if (format == Format::Gif) return d[n - 1] != 0x3B;  // every GIF ends with its trailer byte
  if (format != Format::Bmp || n < 30) return false;
  // Uncompressed BMP (BI_RGB / BI_BITFIELDS): the pixel array is offset + stride * |height|.
  const uint32_t offset = le32(d + 10), header = le32(d + 14);
  int64_t width = 0, height = 0, bpp = 0, compression = 0;
  if (header == 12) {
    width = le16(d + 18), height = le16(d + 20), bpp = le16(d + 24);
  } else if (header >= 40 && n >= 34) {
    width = static_cast<int32_t>(le32(d + 18)), height = static_cast<int32_t>(le32(d + 22));
    bpp = le16(d + 28), compression = le32(d + 30);
  } else {
    return false;
  }
  if (compression != 0 && compression != 3) return false;
  const int64_t stride = (std::abs(width) * bpp + 31) / 32 * 4;
  return static_cast<int64_t>(offset) + stride * std::abs(height) > static_cast<int64_t>(n);
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r && *r ? r : "no reason given";
}

// out = a*c + (1-a)*bg, rounded to nearest: (x + 127) / 255 rounds x / 255 exactly.
uint8_t over(int c, int a, int bg) { return static_cast<uint8_t>((a * c + (255 - a) * bg + 127) / 255); }

// stb's pixels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA channels) to RGB.
void to_rgb(const uint8_t* src, int channels, size_t count, const std::array<uint8_t, 3>& bg, uint8_t* out) {
  for (size_t i = 0; i < count; ++i, src += channels, out += 3) {
    switch (channels) {
      case 1: out[0] = out[1] = out[2] = src[0]; break;
      case 2: for (int c = 0; c < 3; ++c) out[c] = over(src[0], src[1], bg[c]); break;
      case 3: out[0] = src[0], out[1] = src[1], out[2] = src[2]; break;
      default: for (int c = 0; c < 3; ++c) out[c] = over(src[c], src[3], bg[c]); break;
    }
  }
}

void append_bytes(void* context, void* data, int size) {
  auto* buf = static_cast<std::string*>(context);
  buf->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

#endif  // MMGRAD_HAVE_STB

void require_stb([[maybe_unused]] const std::string& what) {
#ifndef MMGRAD_HAVE_STB
  fail(kOp, fmt::format("cannot handle '{}': mmgrad was built without libstb (install Debian's libstb-dev "
                        "and reconfigure the build)", what));
#endif
}

}  // namespace

bool image_decoding_available() {
#ifdef MMGRAD_HAVE_STB
  return true;
#else
  return false;
#endif
}

Image decode_image_file(const std::string& path, const DecodeOptions& options) {
  require_stb(path);
  const std::vector<uint8_t> bytes = read_whole_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), path, options);
}

Image decode_image_memory([[maybe_unused]] const uint8_t* data, size_t size, const std::string& name,
                          [[maybe_unused]] const DecodeOptions& options) {
  require_stb(name);
  if (size == 0) fail(kOp, fmt::format("'{}' is empty", name));
  if (size > static_cast<size_t>(INT_MAX)) fail(kOp, fmt::format("'{}' is too large ({} bytes)", name, size));
#ifdef MMGRAD_HAVE_STB
  const Format format = sniff(data, size);
  if (format == Format::Unknown)
    fail(kOp, fmt::format("'{}' is not a PNG, JPEG, BMP or GIF image (unrecognised first bytes)", name));
  // Before stb reads anything: even its header parser builds the Huffman tables.
  if (format == Format::Jpeg) {
    const std::string problem = jpeg_huffman_table_problem(data, size);
    if (!problem.empty()) fail(kOp, fmt::format("'{}' is a corrupt JPEG: {}", name, problem));
  }
  const int len = static_cast<int>(size);
  int width = 0, height = 0, channels = 0;
  // Header only: the size is checked before stb allocates anything for the pixels.
  if (!stbi_info_from_memory(data, len, &width, &height, &channels))
    fail(kOp, fmt::format("'{}' has a corrupt or truncated header ({})", name, stb_reason()));
  if (width <= 0 || height <= 0) fail(kOp, fmt::format("'{}' has no pixels ({}x{})", name, width, height));
  if (int64_t{width} * height > options.max_pixels)
    fail(kOp, fmt::format("'{}' is {}x{} = {} pixels, above the limit of {}", name, width, height,
                          int64_t{width} * height, options.max_pixels));
  if (looks_truncated(format, data, size))
    fail(kOp, fmt::format("'{}' is truncated ({} bytes, shorter than its header says)", name, size));

  int w = 0, h = 0, file_channels = 0;
  // Asking for the file's own channel count keeps alpha when there is one (we composite it).
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &h, &file_channels, channels), &stbi_image_free);
  if (!pixels) fail(kOp, fmt::format("cannot decode '{}': corrupt or truncated data ({})", name, stb_reason()));
  if (w != width || h != height)  // the header and the full parse disagree: not a file we can trust
    fail(kOp, fmt::format("'{}': header says {}x{} but the data decodes as {}x{}", name, width, height, w, h));

  Image image;
  image.width = w;
  image.height = h;
  const size_t count = static_cast<size_t>(w) * static_cast<size_t>(h);
  image.pixels.resize(count * 3);
  to_rgb(pixels.get(), channels, count, options.background, image.pixels.data());
  return image;
#else
  return {};
#endif
}

std::string encode_png(const Image& image, const std::string& name) {
  require_stb(name);
  const size_t expected = static_cast<size_t>(std::max<int64_t>(image.width, 0)) *
                          static_cast<size_t>(std::max<int64_t>(image.height, 0)) * 3;
  if (image.empty() || image.width < 0 || image.height < 0)
    fail(kOp, fmt::format("cannot write '{}': the image is empty ({}x{})", name, image.width, image.height));
  if (image.pixels.size() != expected)
    fail(kOp, fmt::format("cannot write '{}': {}x{} RGB needs {} bytes, the image holds {}", name, image.width,
                          image.height, expected, image.pixels.size()));
  // stb computes the encoded buffer size, (3 * width + 1) * height, in an int.
  if ((image.width * 3 + 1) * image.height > INT_MAX)
    fail(kOp, fmt::format("cannot write '{}': {}x{} is too large for PNG encoding", name, image.width, image.height));
  std::string png;
#ifdef MMGRAD_HAVE_STB
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  if (!stbi_write_png_to_func(&append_bytes, &png, w, h, 3, image.pixels.data(), w * 3))
    fail(kOp, fmt::format("cannot encode '{}' as PNG", name));
#endif
  return png;
}

void write_png(const std::string& path, const Image& image) {
  const std::string png = encode_png(image, path);
  write_file_atomically(path, kOp, [&](std::ostream& out) { out.write(png.data(), static_cast<std::streamsize>(png.size())); });
}

}  // namespace mmgrad::data
