// TensorBoard event files: CRC-32C against its check value, and a file read back record by
// record (framing, both checksums, the Event and Summary fields) as TensorBoard reads it.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/core/test_util.h"
#include "core/checksum.h"
#include "train/tensorboard.h"

using namespace mmgrad::train;

namespace {

struct Record {
  double wall_time = 0;
  int64_t step = -1;
  std::string file_version, tag;
  float value = 0;
};

uint64_t varint(const std::string& s, size_t& i) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto b = static_cast<uint8_t>(s.at(i++));
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
}

// A minimal protobuf reader for Event / Summary / Value.
void parse(const std::string& m, Record& r, int depth = 0) {
  for (size_t i = 0; i < m.size();) {
    const uint64_t key = varint(m, i);
    const int field = static_cast<int>(key >> 3), type = static_cast<int>(key & 7);
    if (type == 0) {
      const uint64_t v = varint(m, i);
      if (depth == 0 && field == 2) r.step = static_cast<int64_t>(v);
    } else if (type == 1) {
      std::memcpy(&r.wall_time, m.data() + i, 8);
      i += 8;
    } else if (type == 5) {
      std::memcpy(&r.value, m.data() + i, 4);
      i += 4;
    } else if (type == 2) {
      const size_t n = varint(m, i);
      const std::string sub = m.substr(i, n);
      i += n;
      if (depth == 0 && field == 3) r.file_version = sub;
      else if (depth == 2 && field == 1) r.tag = sub;
      else parse(sub, r, depth + 1);  // summary (5) -> value (1)
    } else {
      FAIL() << "unexpected wire type " << type;
    }
  }
}

std::vector<Record> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string f = ss.str();
  std::vector<Record> out;
  for (size_t i = 0; i < f.size();) {
    uint64_t n;
    uint32_t crc_len, crc_data;
    std::memcpy(&n, f.data() + i, 8);
    std::memcpy(&crc_len, f.data() + i + 8, 4);
    EXPECT_EQ(crc_len, masked_crc32c(f.substr(i, 8)));
    const std::string data = f.substr(i + 12, n);
    std::memcpy(&crc_data, f.data() + i + 12 + n, 4);
    EXPECT_EQ(crc_data, masked_crc32c(data));
    Record r;
    parse(data, r);
    out.push_back(r);
    i += 12 + n + 4;
  }
  return out;
}

}  // namespace

TEST(TensorBoard, Crc32cMatchesItsCheckValue) {
  EXPECT_EQ(mmgrad::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(mmgrad::crc32c(""), 0u);
  // Continuing over pieces equals one pass; long inputs take the 8-byte path.
  std::string big(1000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  EXPECT_EQ(mmgrad::crc32c(big.data() + 13, big.size() - 13, mmgrad::crc32c(big.data(), 13)), mmgrad::crc32c(big));
}

TEST(TensorBoard, EventFilesReadBackAsTensorBoardReadsThem) {
  const std::string dir = mmtest::temp_path("tb");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string path;
  {
    EventWriter w(dir);
    path = w.path();
    w.scalar("loss/total", 1, 2.5);
    w.scalar("train/lr", 2, 1e-3);
  }
  EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::vector<Record> r = read_events(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].file_version, "brain.Event:2");
  EXPECT_GT(r[0].wall_time, 1.7e9);
  EXPECT_EQ(r[1].tag, "loss/total");
  EXPECT_EQ(r[1].step, 1);
  EXPECT_FLOAT_EQ(r[1].value, 2.5f);
  EXPECT_EQ(r[2].tag, "train/lr");
  EXPECT_FLOAT_EQ(r[2].value, 1e-3f);
}
