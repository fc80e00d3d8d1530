// safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON
// header {name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}, then the raw
// little-endian data.
//
// Reading validates everything before trusting it (header length against the file size,
// dtypes, shapes, offsets inside the data block, sizes that match the shapes, no overlaps,
// no duplicate names) and names the file and the tensor in every error. F16 is widened to
// f32 on load. Writing goes to a temporary file that is renamed over the target, so an
// interrupted save never leaves a half-written file under the real name.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::train {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;  // in file order, on the CPU
  std::map<std::string, std::string> metadata;
};

SafetensorsFile load_safetensors(const std::string& path);
// The header's __metadata__ alone (the header is validated; the data is not read).
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

enum class StoreFloatsAs { Same, F16, BF16 };

// Tensors may live on any device and be non-contiguous; names must be unique and non-empty.
// f32 tensors are stored as F16 or BF16 when asked (for smaller exports).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      StoreFloatsAs floats = StoreFloatsAs::Same);

}  // namespace mmgrad::train
