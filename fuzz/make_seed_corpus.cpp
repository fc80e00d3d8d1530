// Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/): small valid files of
// each format, which a fuzzer mutates into broken ones. Run once and committed; rerun after
// a format changes:  build/fuzz/make_seed_corpus fuzz/corpus
// The files are tiny on purpose: libFuzzer explores small inputs much faster.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <stb_image_write.h>  // Debian's libstb (the implementation is in libstb.so)

#include "autograd/ops.h"
#include "core/json.h"
#include "data/bpe.h"
#include "data/image.h"
#include "models/layers.h"
#include "train/checkpoint.h"
#include "train/run_config.h"
#include "train/safetensors.h"

using namespace mmgrad;
namespace fs = std::filesystem;

namespace {
std::string root;

std::string seed_path(const std::string& target, const std::string& name) {
  fs::create_directories(root + "/" + target);
  return root + "/" + target + "/" + name;
}
void write_seed(const std::string& target, const std::string& name, const std::string& bytes) {
  std::ofstream(seed_path(target, name), std::ios::binary) << bytes;
}

void safetensors_seeds() {
  Tensor a = arange(0, 6).reshape({2, 3});
  Tensor ids = arange(0, 4, 1, DType::I64);
  train::save_safetensors(seed_path("safetensors", "f32_i64.safetensors"), {{"a", a}, {"ids", ids}}, {{"note", "seed"}});
  train::save_safetensors(seed_path("safetensors", "f16.safetensors"), {{"w", a}}, {}, train::StoreFloatsAs::F16);
  train::save_safetensors(seed_path("safetensors", "bf16.safetensors"), {{"w", a}}, {}, train::StoreFloatsAs::BF16);
  train::save_safetensors(seed_path("safetensors", "scalar.safetensors"), {{"s", full({}, 2.5, DType::F32)}});
  train::save_safetensors(seed_path("safetensors", "empty.safetensors"), {});
}

// The fuzz_checkpoint target's model (nn::Mlp 4 -> 8 -> 4), so the fuzzer starts from files
// that pass the name and shape checks and reaches the checksum and optimizer state.
void checkpoint_seeds() {
  Generator init{1};
  nn::Mlp model{4, 8, nn::Activation::Gelu, init};
  train::AdamW optimizer{model.named_parameters(), 0.1};
  train::TrainState state{3, 7, 12, 24, "{\"preset\":\"fuzz\"}"};
  train::save_checkpoint(seed_path("checkpoint", "fresh.safetensors"), model, optimizer, state);
  Tensor x = randn({2, 4}, DType::F32, Device::cpu(), &init);
  sum(square(model.forward(x))).backward();
  optimizer.step(1e-2);
  train::save_checkpoint(seed_path("checkpoint", "after_a_step.safetensors"), model, optimizer, state);
  nn::Mlp other{4, 4, nn::Activation::Gelu, init};
  train::AdamW other_optimizer{other.named_parameters(), 0.1};
  train::save_checkpoint(seed_path("checkpoint", "other_shapes.safetensors"), other, other_optimizer, state);
  // A checkpoint is a safetensors file too.
  fs::copy_file(seed_path("checkpoint", "after_a_step.safetensors"), seed_path("safetensors", "checkpoint.safetensors"),
                fs::copy_options::overwrite_existing);
}

void image_seeds() {
  const int w = 4, h = 3;
  std::vector<uint8_t> rgba(w * h * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = static_cast<uint8_t>(i * 37 % 256);
  std::vector<uint8_t> rgb, grey;
  for (int i = 0; i < w * h; ++i) {
    for (int c = 0; c < 3; ++c) rgb.push_back(rgba[i * 4 + c]);
    grey.push_back(rgba[i * 4]);
  }
  stbi_write_png(seed_path("image", "rgb.png").c_str(), w, h, 3, rgb.data(), w * 3);
  stbi_write_png(seed_path("image", "rgba.png").c_str(), w, h, 4, rgba.data(), w * 4);
  stbi_write_png(seed_path("image", "grey.png").c_str(), w, h, 1, grey.data(), w);
  stbi_write_jpg(seed_path("image", "rgb.jpg").c_str(), w, h, 3, rgb.data(), 90);
  stbi_write_jpg(seed_path("image", "grey.jpg").c_str(), w, h, 1, grey.data(), 90);
  stbi_write_bmp(seed_path("image", "rgb.bmp").c_str(), w, h, 3, rgb.data());
  // The smallest GIF: 1 x 1, a two-colour palette, one LZW-coded pixel.
  const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0, 0, 0, 0, 0xff,
                               0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b};
  write_seed("image", "one_pixel.gif", std::string(reinterpret_cast<const char*>(gif), sizeof gif));
}

// The first byte picks the dialect (odd: CSV), see fuzz_caption_table.cpp.
void caption_table_seeds() {
  write_seed("caption_table", "plain.tsv", std::string("\x00", 1) + "filepath\ttitle\nimages/a.png\ta red circle\nb.jpg\ttwo blue squares\n");
  write_seed("caption_table", "extra_columns.tsv", std::string("\x00", 1) + "key\tfilepath\ttitle\tscore\n1\tx.png\ta cat\t0.5\n");
  write_seed("caption_table", "quoted.csv",
             "\x01" "filepath,title\n\"dir with, comma/a.png\",\"a \"\"quoted\"\" caption\"\nplain.png,\xc3\xbcnicode caption\r\n");
}

void tokenizer_seeds() {
  std::string merges = "#version: 0.2\nh e\nl l\nhe ll\nhell o</w>\nw o\nr l\nwo rl\n";
  write_seed("clip_merges", "small.txt", merges);
  write_seed("clip_merges", "empty_merges.txt", "#version: 0.2\n");

  // tokenizer.json: GPT-2's layout (ByteLevel) and CLIP's (Split + ByteLevel, </w> suffix).
  std::vector<std::string> bytes;  // GPT-2's byte symbols in vocabulary order
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    return s;
  };
  std::vector<bool> printable(256, false);
  for (int b = 0; b < 256; ++b) printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  for (int b = 0; b < 256; ++b) if (printable[b]) bytes.push_back(utf8(b));
  for (int b = 0, extra = 0; b < 256; ++b) if (!printable[b]) bytes.push_back(utf8(256 + extra++));
  auto vocab_json = [](const std::vector<std::string>& tokens) {
    std::string v;
    for (size_t i = 0; i < tokens.size(); ++i) v += (i ? ", " : "") + json::quote(tokens[i]) + ": " + std::to_string(i);
    return "{" + v + "}";
  };
  std::vector<std::string> gpt2 = bytes;
  for (const char* t : {"he", "ll", "hell", "hello"}) gpt2.push_back(t);
  write_seed("tokenizer_json", "gpt2.json",
             "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 260, \"content\": \"<|endoftext|>\", \"special\": true}], "
             "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
             "\"post_processor\": null, \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
             "\"vocab\": " + vocab_json(gpt2) + ", \"merges\": [\"h e\", \"l l\", \"he ll\", \"hell o\"]}}");
  std::vector<std::string> clip = bytes;
  for (int i = 0; i < 256; ++i) clip.push_back(bytes[i] + "</w>");
  for (const char* t : {"he", "ll", "hell", "hello</w>", "<|startoftext|>", "<|endoftext|>"}) clip.push_back(t);
  write_seed("tokenizer_json", "clip.json",
             "{\"added_tokens\": [{\"id\": 516, \"content\": \"<|startoftext|>\", \"special\": true}, "
             "{\"id\": 517, \"content\": \"<|endoftext|>\", \"special\": true}], "
             "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Replace\", "
             "\"pattern\": {\"Regex\": \"\\\\s+\"}, \"content\": \" \"}, {\"type\": \"Lowercase\"}]}, "
             "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
             "\"<\\\\|startoftext\\\\|>|<\\\\|endoftext\\\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\\\p{L}]+|[\\\\p{N}]|[^\\\\s\\\\p{L}\\\\p{N}]+\"}, "
             "\"behavior\": \"Removed\", \"invert\": true}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false}]}, "
             "\"post_processor\": {\"type\": \"RobertaProcessing\", \"sep\": [\"<|endoftext|>\", 517], \"cls\": [\"<|startoftext|>\", 516]}, "
             "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<|endoftext|>\", \"end_of_word_suffix\": \"</w>\", "
             "\"vocab\": " + vocab_json(clip) + ", \"merges\": [\"h e\", \"l l\", \"he ll\", \"hell o</w>\"]}}");

  data::BpeTokenizer::train({"a red circle left of a green square", "two blue triangles"}, 290)
      .save(seed_path("bpe_file", "trained.bpe"));
  data::BpeTokenizer().save(seed_path("bpe_file", "bytes_only.bpe"));

  write_seed("tokenize", "caption.txt", "a small red circle to the left of a green square");
  write_seed("tokenize", "unicode.txt", "Ünïcödé — 日本語 🙂 &amp; it's <|endoftext|>");
  write_seed("tokenize", "invalid_utf8.txt", "caf\xc3 \xff\xfe\x80 \xe6\x97");
}

void config_seeds() {
  for (const char* preset : {"shapes-small", "clip-tiny"})
    write_seed("config", std::string(preset) + ".json", train::to_json(train::run_preset(preset)));
  write_seed("config", "sets.txt", "steps=10\nbatch_size=32\nlr=0.001\ncontrastive=siglip\nseed=3\n");
}

void json_seeds() {
  write_seed("json", "object.json", R"({"a": [1, -2.5e3, true, null], "b": {"c": "\u00fc\ud83d\ude42\n"}})");
  write_seed("json", "string.json", R"("escapes \" \\ \/ \b \f \n \r \t \u0000")");
  write_seed("json", "numbers.json", "[0, -0, 1e308, 1e-308, 123456789012345678901234567890, 0.1]");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_FOLDER\n", argv[0]);
    return 2;
  }
  root = argv[1];
  safetensors_seeds();
  checkpoint_seeds();
  if (data::image_decoding_available()) image_seeds();
  caption_table_seeds();
  tokenizer_seeds();
  config_seeds();
  json_seeds();
  std::printf("seed corpus written under %s\n", root.c_str());
  return 0;
}
