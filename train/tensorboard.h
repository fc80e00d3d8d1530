// TensorBoard event files, written without TensorFlow or protobuf: the TFRecord framing
// (length, masked CRC-32C of the length, the record, masked CRC-32C of the record) around
// hand-encoded Event messages (wall_time, step, and a Summary of scalar values). Point
// `tensorboard --logdir runs/` at the run folders to see the curves.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

namespace mmgrad::train {

// TFRecord's masking of CRC-32C (core/checksum.h).
uint32_t masked_crc32c(const std::string& bytes);

class EventWriter {
 public:
  // Creates <dir>/events.out.tfevents.<unix time>.mmgrad and writes the file-version event.
  explicit EventWriter(const std::string& dir);
  void scalar(const std::string& tag, int64_t step, double value);
  void flush() { out_.flush(); }
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

}  // namespace mmgrad::train
