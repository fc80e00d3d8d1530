#include "data/jpeg_tables.h"

#include <fmt/format.h>

namespace mmgrad::data {
namespace {

constexpr uint8_t kDht = 0xC4, kSos = 0xDA, kSofProgressive = 0xC2;
constexpr int kMaxCodes = 256;

// Which Huffman tables the DHT segments seen so far define: [class: 0 DC, 1 AC][id 0-3].
struct DefinedTables {
  bool table[2][4] = {};
};

// The tables of one DHT segment whose length field is at `at` (just after FF C4), each a
// class/id byte, 16 code counts and the symbols. Stops quietly at the end of the data: stb
// then reads zeros, which give no codes. Records each table it defines.
std::string check_dht(const uint8_t* data, size_t size, size_t at, DefinedTables& defined) {
  if (at + 2 > size) return {};
  int64_t left = ((int64_t{data[at]} << 8) | data[at + 1]) - 2;
  size_t pos = at + 2;
  while (left > 0 && pos < size) {
    const int table_class = data[pos] >> 4, id = data[pos] & 15;
    if (table_class <= 1 && id <= 3) defined.table[table_class][id] = true;  // stb refuses others
    int codes = 0;
    for (size_t i = 1; i <= 16 && pos + i < size; ++i) codes += data[pos + i];
    if (codes > kMaxCodes)
      return fmt::format("a Huffman table declares {} codes at byte {}, at most {}", codes, pos, kMaxCodes);
    pos += 17 + static_cast<size_t>(codes);
    left -= 17 + codes;
  }
  return {};
}

// The scan header whose length field is at `at` (just after FF DA): each component names a
// DC and an AC table, which stb_image decodes with whether or not a DHT defined them (an
// undefined one is uninitialised memory: found by fuzz/fuzz_image). A progressive scan uses
// only its DC tables (spectral start 0) or only its AC ones; a sequential scan both.
std::string check_scan(const uint8_t* data, size_t size, size_t at, const DefinedTables& defined,
                       bool progressive) {
  if (at + 3 > size) return {};
  const size_t components = data[at + 2];
  const size_t selectors = at + 3, spectral_start = selectors + 2 * components;
  if (spectral_start >= size) return {};  // stb stops at the truncated header
  const bool uses_dc = !progressive || data[spectral_start] == 0;
  const bool uses_ac = !progressive || data[spectral_start] != 0;
  for (size_t c = 0; c < components; ++c) {
    const int dc = data[selectors + 2 * c + 1] >> 4, ac = data[selectors + 2 * c + 1] & 15;
    if (dc > 3 || ac > 3) continue;  // stb refuses these itself
    if (uses_dc && !defined.table[0][dc])
      return fmt::format("the scan at byte {} uses DC Huffman table {}, which no table before it defines", at - 2, dc);
    if (uses_ac && !defined.table[1][ac])
      return fmt::format("the scan at byte {} uses AC Huffman table {}, which no table before it defines", at - 2, ac);
  }
  return {};
}

}  // namespace

std::string jpeg_huffman_table_problem(const uint8_t* data, size_t size) {
  // Segments up to the first scan, as stb_image reads them: fill bytes (FF) before a marker,
  // then the marker and, for all but the standalone ones, a 2-byte length.
  DefinedTables defined;
  bool progressive = false;
  size_t pos = 2;  // after SOI
  while (pos < size) {
    // Not a marker where one must be: stb_image then skips bytes until it finds one, so from
    // here on every FF C4 and FF DA counts.
    if (data[pos] != 0xFF) break;
    while (pos < size && data[pos] == 0xFF) ++pos;
    if (pos >= size) return {};
    const uint8_t marker = data[pos++];
    if (marker == kSos) {
      pos -= 2;  // back to its FF: the scan is checked below with every later one
      break;
    }
    const bool standalone = marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9);
    if (standalone) continue;
    if (pos + 2 > size) return {};
    if (marker == kDht) {
      std::string problem = check_dht(data, size, pos, defined);
      if (!problem.empty()) return problem;
    }
    if (marker == kSofProgressive) progressive = true;
    pos += (size_t{data[pos]} << 8) | data[pos + 1];
  }
  // From the first scan (or a resynchronisation) on, where stb_image finds markers depends on
  // the decoded data: every FF C4 counts as a table and every FF DA as a scan.
  for (size_t i = pos; i + 1 < size; ++i) {
    if (data[i] != 0xFF) continue;
    std::string problem;
    if (data[i + 1] == kDht) problem = check_dht(data, size, i + 2, defined);
    else if (data[i + 1] == kSos) problem = check_scan(data, size, i + 2, defined, progressive);
    if (!problem.empty()) return problem;
  }
  return {};
}

}  // namespace mmgrad::data
