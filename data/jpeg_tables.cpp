#include "data/jpeg_tables.h"

#include <fmt/format.h>

namespace mmgrad::data {
namespace {

constexpr uint8_t kDht = 0xC4, kSos = 0xDA;
constexpr int kMaxCodes = 256;

// The tables of one DHT segment whose length field is at `at` (just after FF C4), each a
// class/id byte, 16 code counts and the symbols. Stops quietly at the end of the data: stb
// then reads zeros, which give no codes.
std::string check_dht(const uint8_t* data, size_t size, size_t at) {
  if (at + 2 > size) return {};
  int64_t left = ((int64_t{data[at]} << 8) | data[at + 1]) - 2;
  size_t pos = at + 2;
  while (left > 0 && pos < size) {
    int codes = 0;
    for (size_t i = 1; i <= 16 && pos + i < size; ++i) codes += data[pos + i];
    if (codes > kMaxCodes)
      return fmt::format("a Huffman table declares {} codes at byte {}, at most {}", codes, pos, kMaxCodes);
    pos += 17 + static_cast<size_t>(codes);
    left -= 17 + codes;
  }
  return {};
}

}  // namespace

std::string jpeg_huffman_table_problem(const uint8_t* data, size_t size) {
  // Segments up to the first scan, as stb_image reads them: fill bytes (FF) before a marker,
  // then the marker and, for all but the standalone ones, a 2-byte length.
  size_t pos = 2;  // after SOI
  while (pos < size) {
    // Not a marker where one must be: stb_image then skips bytes until it finds one, so from
    // here on every FF C4 counts.
    if (data[pos] != 0xFF) break;
    while (pos < size && data[pos] == 0xFF) ++pos;
    if (pos >= size) return {};
    const uint8_t marker = data[pos++];
    if (marker == kSos) break;
    const bool standalone = marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9);
    if (standalone) continue;
    if (pos + 2 > size) return {};
    if (marker == kDht) {
      std::string problem = check_dht(data, size, pos);
      if (!problem.empty()) return problem;
    }
    pos += (size_t{data[pos]} << 8) | data[pos + 1];
  }
  // From the first scan (or a resynchronisation) on: every FF C4.
  for (size_t i = pos; i + 1 < size; ++i) {
    if (data[i] == 0xFF && data[i + 1] == kDht) {
      std::string problem = check_dht(data, size, i + 2);
      if (!problem.empty()) return problem;
    }
  }
  return {};
}

}  // namespace mmgrad::data
