#include "train/tensorboard.h"

#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/checksum.h"
#include "core/error.h"

namespace mmgrad::train {
namespace {

// Protocol buffer wire format, the few pieces an Event needs.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void fixed(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }  // little-endian host
void tag(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }
void bytes_field(std::string& out, int field, const std::string& b) {
  tag(out, field, 2);
  varint(out, b.size());
  out += b;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; oneof { string file_version = 3; Summary summary = 5; } }
std::string event(int64_t step, const std::string& file_version, const std::string& summary) {
  std::string e;
  const double t = now_seconds();
  tag(e, 1, 1);
  fixed(e, &t, 8);
  tag(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  if (!file_version.empty()) bytes_field(e, 3, file_version);
  if (!summary.empty()) bytes_field(e, 5, summary);
  return e;
}

}  // namespace

uint32_t masked_crc32c(const std::string& bytes) {
  const uint32_t c = mmgrad::crc32c(bytes);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) {
  path_ = fmt::format("{}/events.out.tfevents.{}.mmgrad", dir, static_cast<int64_t>(now_seconds()));
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) fail("tensorboard", "cannot write '" + path_ + "'");
  write_record(event(0, "brain.Event:2", ""));
}

void EventWriter::scalar(const std::string& name, int64_t step, double value) {
  // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
  std::string v;
  bytes_field(v, 1, name);
  const float f = static_cast<float>(value);
  tag(v, 2, 5);
  fixed(v, &f, 4);
  std::string summary;
  bytes_field(summary, 1, v);
  write_record(event(step, "", summary));
}

void EventWriter::write_record(const std::string& data) {
  std::string header;
  const uint64_t n = data.size();
  fixed(header, &n, 8);
  const uint32_t header_crc = masked_crc32c(header), data_crc = masked_crc32c(data);
  out_.write(header.data(), 8);
  out_.write(reinterpret_cast<const char*>(&header_crc), 4);
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  out_.write(reinterpret_cast<const char*>(&data_crc), 4);
  if (!out_) fail("tensorboard", "cannot write '" + path_ + "'");
}

}  // namespace mmgrad::train
