// Where a tensor's memory lives. CPU now; CUDA devices are indexed.
#pragma once
#include <cstdint>
#include <string>

namespace mmgrad {

enum class DeviceType : uint8_t { CPU, CUDA };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  static Device parse(const std::string& s);  // inverse of str(); throws on unknown names
};

}  // namespace mmgrad
