// CRC-32C (Castagnoli): the checksum of checkpoints and of TensorBoard's record framing.
// Computed with the SSE4.2 crc32 instruction where the CPU has it (about 10 GB/s), else a
// table (the same values).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mmgrad {

// Continues `crc` (0 to start) over n bytes.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
inline uint32_t crc32c(const std::string& bytes) { return crc32c(bytes.data(), bytes.size()); }

}  // namespace mmgrad
