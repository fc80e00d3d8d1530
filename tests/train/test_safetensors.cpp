// safetensors: round trips of every dtype, the byte layout, and every kind of corrupt file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/json.h"
#include "tests/core/test_util.h"
#include "train/safetensors.h"

using namespace mmgrad;
using namespace mmgrad::train;
namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file with the given header JSON and data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}
}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  Generator gen(1);
  NamedTensors in = {
      {"f32", randn({3, 4}, DType::F32, Device::cpu(), &gen)},
      {"f64.transposed", transpose(randn({2, 5}, DType::F64, Device::cpu(), &gen), 0, 1)},
      {"bf16", randn({7}, DType::F32, Device::cpu(), &gen).to(DType::BF16)},
      {"i32", randint(-100, 100, {2, 2}, DType::I32, Device::cpu(), &gen)},
      {"i64", randint(-100000, 100000, {5}, DType::I64, Device::cpu(), &gen)},
      {"bool", gt(randn({4}, DType::F32, Device::cpu(), &gen), 0.0)},
      {"scalar", scalar_tensor(3.5)},
      {"empty", zeros({0, 3})},
  };
  std::string path = mmtest::temp_path("all.safetensors");
  save_safetensors(path, in, {{"step", "12"}, {"note", "quote\" and \\ backslash"}});
  SafetensorsFile out = load_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);
    const Tensor& a = in[i].second;
    const Tensor& b = out.tensors[i].second;
    EXPECT_EQ(b.dtype(), a.dtype()) << in[i].first;
    EXPECT_EQ(b.shape(), a.shape()) << in[i].first;
    EXPECT_EQ(to_vector<double>(b), to_vector<double>(a)) << in[i].first;
  }
  EXPECT_EQ(out.metadata.at("step"), "12");
  EXPECT_EQ(out.metadata.at("note"), "quote\" and \\ backslash");
  // The header alone gives the same metadata.
  EXPECT_EQ(load_safetensors_metadata(path), out.metadata);
  EXPECT_THROW(load_safetensors_metadata(mmtest::temp_path("no_such.safetensors")), Error);
}

TEST(Safetensors, ByteLayoutFollowsTheFormat) {
  std::string path = mmtest::temp_path("layout.safetensors");
  save_safetensors(path, {{"a", from_data<float>({1, 2}, {2})}, {"b", from_data<int64_t>({7}, {1})}});
  std::string bytes = read_all(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);  // data starts 8-byte aligned
  ASSERT_EQ(bytes.size(), 8 + n + 8 + 8);
  json::Value h = json::Value::parse(bytes.substr(8, n));
  EXPECT_EQ(h.find("a")->find("dtype")->as_string("dtype"), "F32");
  EXPECT_EQ(h.find("b")->find("data_offsets")->as_array("o")[0].as_int("begin"), 8);
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(Safetensors, F16AndBF16Exports) {
  Tensor x = from_data<float>({1.0f, -2.5f, 65504.0f, 1e-8f, 0.1f}, {5});
  std::string p16 = mmtest::temp_path("h.safetensors"), pb = mmtest::temp_path("b.safetensors");
  save_safetensors(p16, {{"x", x}}, {}, StoreFloatsAs::F16);
  save_safetensors(pb, {{"x", x}}, {}, StoreFloatsAs::BF16);
  Tensor h = load_safetensors(p16).tensors[0].second;  // F16 widens to f32
  EXPECT_EQ(h.dtype(), DType::F32);
  std::vector<float> hv = to_vector<float>(h);
  EXPECT_EQ(hv[0], 1.0f);
  EXPECT_EQ(hv[2], 65504.0f);
  EXPECT_NEAR(hv[4], 0.1f, 1e-4);
  EXPECT_NEAR(hv[3], 0.0f, 1e-7);  // below F16's range: a subnormal or zero
  Tensor b = load_safetensors(pb).tensors[0].second;
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_NEAR(to_vector<float>(b)[4], 0.1f, 1e-3);
}

TEST(Safetensors, CorruptFilesAreReportedWithTheFileAndTensor) {
  std::string path = mmtest::temp_path("bad.safetensors");
  EXPECT_MMGRAD_ERROR(load_safetensors(mmtest::temp_path("missing.safetensors")), "safetensors", "missing.safetensors", "cannot open");
  write_all(path, "abc");
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "too short");
  write_all(path, std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}");
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "header length");
  write_all(path, make_file("{\"a\":", ""));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "not valid JSON");
  const std::string data8(8, '\0');
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "tensor 'w'", "outside the data block");
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "tensor 'w'", "needs 12");
  write_all(path, make_file(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "unsupported dtype Q4");
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "gap or overlap");
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "follow the last tensor");
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "duplicate key");
  write_all(path, make_file(R"({"m":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\x07')));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "other than 0 or 1");
  write_all(path, make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data8));
  EXPECT_MMGRAD_ERROR(load_safetensors(path), "safetensors", "invalid dimension");
}

TEST(Safetensors, AFailedSaveLeavesTheExistingFileAndNoTemporaries) {
  std::string path = mmtest::temp_path("keep.safetensors");
  save_safetensors(path, {{"a", ones({2})}});
  std::string before = read_all(path);
  // A repeated name fails before anything is written.
  EXPECT_MMGRAD_ERROR(save_safetensors(path, {{"a", zeros({2})}, {"a", zeros({2})}}), "safetensors", "repeated");
  EXPECT_EQ(read_all(path), before);
  // A target in a missing directory fails at the temporary file.
  EXPECT_MMGRAD_ERROR(save_safetensors(mmtest::temp_path("no/such/dir.safetensors"), {{"a", ones({2})}}), "safetensors",
                      "cannot write");
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
}
