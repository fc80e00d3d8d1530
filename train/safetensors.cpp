#include "train/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/half.h"
#include "core/json.h"

namespace mmgrad::train {
namespace {

constexpr uint64_t kMaxHeader = uint64_t(100) << 20;  // 100 MiB, as the reference implementation

struct StoredType {
  const char* name;
  size_t size;
  DType dtype;  // what it loads as
};
const StoredType kTypes[] = {{"F32", 4, DType::F32}, {"F64", 8, DType::F64}, {"F16", 2, DType::F32},
                             {"BF16", 2, DType::BF16}, {"I32", 4, DType::I32}, {"I64", 8, DType::I64},
                             {"BOOL", 1, DType::Bool}};

const StoredType* stored_type(const std::string& name) {
  for (const auto& t : kTypes)
    if (name == t.name) return &t;
  return nullptr;
}

const char* stored_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  fail("safetensors", "'" + path + "': " + what);
}

}  // namespace

namespace {

// The validated header of a file: its JSON and where the data block lies.
struct Header {
  json::Value root;
  uint64_t data_start = 0, data_size = 0;
};

Header read_header(const std::string& path, std::ifstream& in) {
  if (!in) bad_file(path, std::string("cannot open (") + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8) bad_file(path, "too short to be a safetensors file");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
  if (header_len > kMaxHeader || header_len > file_size - 8)
    bad_file(path, fmt::format("header length {} does not fit the file ({} bytes)", header_len, file_size));
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) bad_file(path, "truncated header");
  Header h;
  h.data_start = 8 + header_len;
  h.data_size = file_size - h.data_start;
  try {
    h.root = json::Value::parse(text);
  } catch (const Error& e) {
    bad_file(path, "header is not valid JSON: " + e.detail());
  }
  if (!h.root.is_object()) bad_file(path, "header is not a JSON object");
  return h;
}

std::map<std::string, std::string> read_metadata(const std::string& path, const json::Value& entry) {
  std::map<std::string, std::string> out;
  if (!entry.is_object()) bad_file(path, "__metadata__ is not an object");
  for (const auto& [k, v] : entry.as_object("__metadata__")) {
    if (!v.is_string()) bad_file(path, "__metadata__ value of '" + k + "' is not a string");
    out[k] = v.as_string("metadata");
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const Header h = read_header(path, in);
  const json::Value* meta = h.root.find("__metadata__");
  return meta ? read_metadata(path, *meta) : std::map<std::string, std::string>{};
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const Header h = read_header(path, in);
  const json::Value& root = h.root;
  const uint64_t data_start = h.data_start, data_size = h.data_size;

  SafetensorsFile out;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : root.as_object("header")) {
    if (name == "__metadata__") {
      out.metadata = read_metadata(path, entry);
      continue;
    }
    auto bad = [&, &name = name](const std::string& what) { bad_file(path, "tensor '" + name + "': " + what); };
    if (!entry.is_object()) bad("entry is not an object");
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets) bad("needs dtype, shape and data_offsets");
    if (!dtype->is_string()) bad("dtype is not a string");
    const StoredType* st = stored_type(dtype->as_string("dtype"));
    if (!st) bad("unsupported dtype " + dtype->as_string("dtype"));
    if (!shape->is_array()) bad("shape is not an array");
    Shape dims;
    uint64_t numel = 1;
    for (const json::Value& d : shape->as_array("shape")) {
      if (!d.is_number() || d.as_number("dim") < 0 || d.as_number("dim") != static_cast<double>(static_cast<int64_t>(d.as_number("dim"))))
        bad("shape has an invalid dimension");
      dims.push_back(static_cast<int64_t>(d.as_number("dim")));
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dims.back()), &numel)) bad("shape is too large");
    }
    if (dims.size() > static_cast<size_t>(kMaxDims)) bad("more than 8 dims");
    if (!offsets->is_array() || offsets->as_array("data_offsets").size() != 2) bad("data_offsets must be [begin, end]");
    const auto& o = offsets->as_array("data_offsets");
    if (!o[0].is_number() || !o[1].is_number() || o[0].as_number("begin") < 0 || o[1].as_number("end") < 0)
      bad("data_offsets must be non-negative integers");
    const uint64_t begin = static_cast<uint64_t>(o[0].as_number("begin")), end = static_cast<uint64_t>(o[1].as_number("end"));
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(st->size), &nbytes)) bad("shape is too large");
    if (begin > end || end > data_size)
      bad(fmt::format("data_offsets [{}, {}] fall outside the data block ({} bytes)", begin, end, data_size));
    if (end - begin != nbytes)
      bad(fmt::format("data_offsets span {} bytes but {} {} needs {}", end - begin, shape_str(dims), st->name, nbytes));

    // Read and convert.
    std::vector<char> raw(nbytes);
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    in.read(raw.data(), static_cast<std::streamsize>(nbytes));
    if (!in) bad("data could not be read");
    Tensor t = Tensor::empty(dims, st->dtype);
    if (std::strcmp(st->name, "F16") == 0) {
      float* dst = t.data_ptr<float>();
      for (uint64_t i = 0; i < numel; ++i) {
        uint16_t h;
        std::memcpy(&h, raw.data() + 2 * i, 2);
        dst[i] = half_to_float(h);
      }
    } else {
      if (nbytes) std::memcpy(t.raw_data(), raw.data(), nbytes);
      if (st->dtype == DType::Bool)
        for (uint64_t i = 0; i < numel; ++i)
          if (static_cast<unsigned char>(raw[i]) > 1) bad("BOOL data holds a value other than 0 or 1");
    }
    spans.push_back({begin, end, name});
    out.tensors.emplace_back(name, t);
  }
  // The data block must be covered exactly, without overlaps (the format's own rule).
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  uint64_t cursor = 0;
  for (const Span& s : spans) {
    if (s.begin != cursor)
      bad_file(path, fmt::format("tensor '{}' starts at byte {} of the data block, expected {} (gap or overlap)",
                                 s.name, s.begin, cursor));
    cursor = s.end;
  }
  if (cursor != data_size) bad_file(path, fmt::format("{} bytes of data follow the last tensor", data_size - cursor));
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata, StoreFloatsAs floats) {
  NoGradGuard no_grad;
  std::set<std::string> names;
  std::vector<std::string> blobs;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json::quote(k) + ":" + json::quote(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__" || !names.insert(name).second)
      fail("safetensors", "'" + path + "': tensor name '" + name + "' is empty, reserved or repeated");
    if (!tensor.defined()) fail("safetensors", "'" + path + "': tensor '" + name + "' is undefined");
    Tensor host = contiguous(to(tensor, Device::cpu()));
    std::string dtype = stored_name(host.dtype());
    std::string blob;
    if (host.dtype() == DType::F32 && floats == StoreFloatsAs::F16) {
      dtype = "F16";
      blob.resize(host.numel() * 2);
      const float* src = host.data_ptr<float>();
      for (int64_t i = 0; i < host.numel(); ++i) {
        uint16_t h = float_to_half(src[i]);
        std::memcpy(blob.data() + 2 * i, &h, 2);
      }
    } else {
      if (host.dtype() == DType::F32 && floats == StoreFloatsAs::BF16) {
        host = contiguous(to(host, DType::BF16));
        dtype = "BF16";
      }
      blob.assign(static_cast<const char*>(host.raw_data()), host.numel() * host.element_size());
    }
    std::string shape;
    for (size_t i = 0; i < host.shape().size(); ++i) {
      if (i) shape += ',';
      shape += std::to_string(host.shape()[i]);
    }
    if (header.size() > 1) header += ',';
    header += json::quote(name);
    header += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", dtype, shape,
                          offset, offset + blob.size());
    offset += blob.size();
    blobs.push_back(std::move(blob));
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  write_file_atomically(path, "safetensors", [&](std::ostream& out) {
    unsigned char len[8];
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const std::string& b : blobs) out.write(b.data(), static_cast<std::streamsize>(b.size()));
  });
}

}  // namespace mmgrad::train
