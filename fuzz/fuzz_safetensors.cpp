// safetensors reader: header length, JSON header, dtypes, shapes, offsets, sizes, overlaps.
// Accepted files must hold exactly what the header declares.
#include "core/shape.h"
#include "fuzz/fuzz_input.h"
#include "train/safetensors.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz::input_as_file(data, size, "weights.safetensors");
  train::SafetensorsFile file;
  bool ok = fuzz::parses_or_refuses_clearly([&] { file = train::load_safetensors(path); }, path);
  if (ok) {
    size_t bytes = 0;
    for (const auto& [name, tensor] : file.tensors) {
      fuzz::require(!name.empty(), "a loaded tensor has a name");
      fuzz::require(tensor.is_contiguous(), "loaded tensors are contiguous");
      bytes += static_cast<size_t>(tensor.numel()) * dtype_size(tensor.dtype());
    }
    // F16/BF16 widen to f32 (twice the bytes); 8-byte header length precedes everything.
    fuzz::require(bytes <= 2 * size, "tensors hold no more data than the file has");
  }
  fuzz::parses_or_refuses_clearly([&] { train::load_safetensors_metadata(path); }, path);
  return 0;
}
