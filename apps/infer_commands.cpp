#include "apps/infer_commands.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "apps/cli_inputs.h"
#include "eval/loaded_run.h"
#include "apps/options.h"
#include "apps/real_data.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json.h"
#include "data/caption_table.h"
#include "eval/embedding.h"
#include "eval/table_eval.h"
#include "train/safetensors.h"

namespace mmgrad::apps {

const char* const kEmbedHelp = R"(usage: mmgrad embed --checkpoint FILE [--images PATH] [--text T ...] [--texts FILE] --out FILE

Writes the embeddings of images and/or texts (unit length, the model's joint space) to a
safetensors file: image_embeds [N, E] and text_embeds [M, E], with the image paths and the
texts, in order, as JSON lists in the header's metadata ("image_paths", "texts").

options:
  --checkpoint FILE   a checkpoint written by mmgrad train (its folder holds the tokenizer)
  --images PATH       an image, a folder of images (searched recursively, sorted by path)
                      or a caption table (.tsv/.csv: its images)
  --text T            a text to embed (repeatable)
  --texts FILE        texts to embed, one per line
  --out FILE          the safetensors file to write (required)

example:
  mmgrad train --run-dir runs/demo && mmgrad data shapes --out shapes_demo
  mmgrad embed --checkpoint runs/demo/checkpoint.safetensors --images shapes_demo/images \
               --text "a red circle" --text "a blue square" --out shapes_demo/embeddings.safetensors
)";

const char* const kSearchHelp = R"(usage: mmgrad search --checkpoint FILE (--images PATH --text QUERY ... | --image FILE --captions PATH)

Ranks images for a text query, or captions for an image, by cosine similarity in the
model's joint space, and prints the best with their scores.

options:
  --checkpoint FILE   a checkpoint written by mmgrad train
  --images PATH       the images to search: a folder (recursive), a caption table or one image
  --text QUERY        a text query (repeatable: each is ranked separately)
  --image FILE        an image whose captions are ranked instead
  --captions PATH     the captions to rank: a caption table (its captions) or a text file
                      (one caption per line)
  --top K             how many results per query (default 5)

examples:
  mmgrad search --checkpoint runs/demo/checkpoint.safetensors --images shapes_demo/images \
                --text "a green square" --top 3
  mmgrad search --checkpoint runs/demo/checkpoint.safetensors \
                --image shapes_demo/images/00000.png --captions shapes_demo/captions.tsv
)";

const char* const kCaptionHelp = R"(usage: mmgrad caption --checkpoint FILE --images PATH [--images PATH ...]

Generates a caption for each image (greedy decoding with the model's caption decoder) and
prints "path<TAB>caption" lines.

options:
  --checkpoint FILE   a checkpoint of a model with a caption decoder (caption_layers > 0)
  --images PATH       an image, a folder of images or a caption table (repeatable)
  --json FILE         also write [{"image": ..., "caption": ...}, ...] to FILE

example:
  mmgrad caption --checkpoint runs/demo/checkpoint.safetensors --images shapes_demo/images/00001.png
)";

const char* const kZeroshotHelp = R"(usage: mmgrad zeroshot --checkpoint FILE (--data CLASS_FOLDER | --images PATH --classes A|B|C)

Zero-shot classification with prompt templates: each class is the mean embedding of its
prompts ("a photo of a {}." ...), and an image takes the nearest class.

  --data CLASS_FOLDER   a folder of class folders (the folder names are the classes, or
                        classes.txt beside them): prints top-1/top-5 accuracy and per class
  --images PATH         images to classify (a file, a folder or a caption table) among
  --classes A|B|C       '|'-separated class names: prints each image's best class

options:
  --checkpoint FILE   a checkpoint written by mmgrad train
  --prompts T         '|'-separated templates, {} = the class name (default: the run's
                      prompts key, else CLIP's)
  --samples N         at most N images of --data (evenly spread; default all)
  --json FILE         also write the figures (or the predictions) as JSON

examples:
  mmgrad zeroshot --checkpoint runs/demo/checkpoint.safetensors --data shapes_demo/classes \
                  --prompts "a {}|there is a {}"
  mmgrad zeroshot --checkpoint runs/demo/checkpoint.safetensors --images shapes_demo/images/00002.png \
                  --classes "circle|square|triangle|diamond" --prompts "a {}"
)";

namespace {

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json::quote(items[i]);
  return out + "]";
}

// The texts of --text (repeated) and --texts FILE, in that order.
std::vector<std::string> texts_from(const Options& o) {
  std::vector<std::string> texts;
  if (o.repeated.count("text")) texts = o.repeated.at("text");
  if (o.has("texts")) {
    const auto more = read_text_lines(o.get("texts"));
    texts.insert(texts.end(), more.begin(), more.end());
  }
  return texts;
}

std::string required(const Options& o, const std::string& name, const std::string& command) {
  if (!o.has(name)) fail(command, "--" + name + " is required (see " + command + " --help)");
  return o.get(name);
}

using eval::LoadedRun;
using eval::load_run;

Tensor load_images(const LoadedRun& run, const std::vector<std::string>& paths) {
  return eval::load_image_files(paths, preprocess_from_config(run.config), decode_options(run.config));
}

}  // namespace

int embed_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad embed", {"checkpoint", "images", "texts", "out"}, {"text"});
  if (o.help) return fmt::print("{}", kEmbedHelp), 0;
  const std::string ckpt = required(o, "checkpoint", "mmgrad embed"), out = required(o, "out", "mmgrad embed");
  const std::vector<std::string> texts = texts_from(o);
  if (!o.has("images") && texts.empty()) fail("mmgrad embed", "nothing to embed: give --images, --text or --texts");
  const LoadedRun run = load_run(ckpt);
  train::NamedTensors tensors;
  std::map<std::string, std::string> meta{{"checkpoint", ckpt}};
  if (o.has("images")) {
    const ImageList images = list_images(o.get("images"), run.config);
    tensors.emplace_back("image_embeds", eval::embed_images(*run.model, load_images(run, images.paths)));
    meta["image_paths"] = json_list(images.paths);
    fmt::print("{} images embedded\n", images.paths.size());
  }
  if (!texts.empty()) {
    tensors.emplace_back("text_embeds", eval::embed_texts(*run.model, *run.tokenizer, texts));
    meta["texts"] = json_list(texts);
    fmt::print("{} texts embedded\n", texts.size());
  }
  train::save_safetensors(out, tensors, meta);
  fmt::print("embeddings ({} dimensions) written to {}\n", run.config.model.embed_dim, out);
  return 0;
}

int search_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad search",
                                  {"checkpoint", "images", "image", "captions", "top"}, {"text"});
  if (o.help) return fmt::print("{}", kSearchHelp), 0;
  const std::string ckpt = required(o, "checkpoint", "mmgrad search");
  const int64_t k = o.get_int("top", 5);
  if (k < 1) fail("mmgrad search", "--top must be at least 1");
  const bool by_text = o.has("images") || o.repeated.count("text");
  const bool by_image = o.has("image") || o.has("captions");
  if (by_text == by_image)
    fail("mmgrad search", "give either --images PATH with --text QUERY, or --image FILE with --captions PATH");
  const LoadedRun run = load_run(ckpt);
  NoGradGuard no_grad;
  if (by_text) {
    const std::string images_path = required(o, "images", "mmgrad search");
    if (!o.repeated.count("text")) fail("mmgrad search", "--text QUERY is required with --images");
    const std::vector<std::string>& queries = o.repeated.at("text");
    const ImageList images = list_images(images_path, run.config);
    const Tensor img = eval::embed_images(*run.model, load_images(run, images.paths));
    const Tensor txt = eval::embed_texts(*run.model, *run.tokenizer, queries);
    const auto best = eval::top_k(matmul(txt, transpose(img, 0, 1)), k);
    for (size_t q = 0; q < queries.size(); ++q) {
      fmt::print("query \"{}\": top {} of {} images\n", queries[q], best[q].size(), images.paths.size());
      for (size_t r = 0; r < best[q].size(); ++r) {
        const auto [i, score] = best[q][r];
        const size_t at = static_cast<size_t>(i);
        fmt::print("  {:>2}. {:.4f}  {}{}\n", r + 1, score, images.paths[at],
                   images.captions.empty() ? "" : "  (" + images.captions[at] + ")");
      }
    }
    return 0;
  }
  const std::string image = required(o, "image", "mmgrad search");
  const std::string captions_path = required(o, "captions", "mmgrad search");
  const std::string ext = std::filesystem::path(captions_path).extension().string();
  std::vector<std::string> captions = ext == ".tsv" || ext == ".csv" ? list_images(captions_path, run.config).captions
                                                                     : read_text_lines(captions_path);
  // A table lists a caption per row; the same caption on several rows is ranked once.
  std::vector<std::string> unique;
  for (const auto& c : captions)
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(c);
  const Tensor img = eval::embed_images(*run.model, load_images(run, {image}));
  const Tensor txt = eval::embed_texts(*run.model, *run.tokenizer, unique);
  const auto best = eval::top_k(matmul(img, transpose(txt, 0, 1)), k);
  fmt::print("image {}: top {} of {} captions\n", image, best[0].size(), unique.size());
  for (size_t r = 0; r < best[0].size(); ++r)
    fmt::print("  {:>2}. {:.4f}  {}\n", r + 1, best[0][r].second, unique[static_cast<size_t>(best[0][r].first)]);
  return 0;
}

int caption_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad caption", {"checkpoint", "json"}, {"images"});
  if (o.help) return fmt::print("{}", kCaptionHelp), 0;
  const std::string ckpt = required(o, "checkpoint", "mmgrad caption");
  if (!o.repeated.count("images")) fail("mmgrad caption", "--images PATH is required (see mmgrad caption --help)");
  const LoadedRun run = load_run(ckpt);
  std::vector<std::string> paths;
  for (const auto& p : o.repeated.at("images")) {
    const auto more = list_images(p, run.config).paths;
    paths.insert(paths.end(), more.begin(), more.end());
  }
  const std::vector<std::string> captions = eval::caption_images(*run.model, *run.tokenizer, load_images(run, paths));
  std::string json = "[";
  for (size_t i = 0; i < paths.size(); ++i) {
    fmt::print("{}\t{}\n", paths[i], captions[i]);
    json += fmt::format("{}\n  {{\"image\": {}, \"caption\": {}}}", i ? "," : "", json::quote(paths[i]),
                        json::quote(captions[i]));
  }
  if (o.has("json"))
    write_file_atomically(o.get("json"), "captions", [&](std::ostream& out) { out << json << "\n]\n"; });
  return 0;
}

int zeroshot_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad zeroshot",
                                  {"checkpoint", "data", "images", "classes", "prompts", "samples", "json"});
  if (o.help) return fmt::print("{}", kZeroshotHelp), 0;
  const std::string ckpt = required(o, "checkpoint", "mmgrad zeroshot");
  if (o.has("data") == o.has("images"))
    fail("mmgrad zeroshot", "give either --data CLASS_FOLDER, or --images PATH with --classes A|B|C");
  LoadedRun run = load_run(ckpt);
  if (o.has("prompts")) run.config.prompts = o.get("prompts");
  const std::vector<std::string> templates = eval::prompt_templates(run.config.prompts);
  if (o.has("data")) {
    evaluate_data(*run.model, *run.tokenizer, run.config, o.get("data"), o.get_int("samples", 1 << 30), o.get("json"));
    return 0;
  }
  const std::string spec = required(o, "classes", "mmgrad zeroshot");
  std::vector<std::string> classes;
  for (size_t a = 0; a <= spec.size();) {
    const size_t b = std::min(spec.find('|', a), spec.size());
    if (b > a) classes.push_back(spec.substr(a, b - a));
    a = b + 1;
  }
  if (classes.size() < 2) fail("mmgrad zeroshot", "--classes needs at least two '|'-separated names, got '" + spec + "'");
  const ImageList images = list_images(o.get("images"), run.config);
  NoGradGuard no_grad;
  const Tensor img = eval::embed_images(*run.model, load_images(run, images.paths));
  const Tensor weights = eval::class_embeddings(*run.model, *run.tokenizer, classes, templates);
  // Probabilities as CLIP reports them: softmax of the scaled cosines.
  const Tensor probs = softmax(mul(matmul(img, transpose(weights, 0, 1)), std::exp(item(run.model->logit_scale))), -1);
  const auto best = eval::top_k(probs, 1);
  std::string json = "[";
  for (size_t i = 0; i < images.paths.size(); ++i) {
    const auto [c, p] = best[i][0];
    fmt::print("{}\t{}\t{:.3f}\n", images.paths[i], classes[static_cast<size_t>(c)], p);
    json += fmt::format("{}\n  {{\"image\": {}, \"class\": {}, \"probability\": {}}}", i ? "," : "",
                        json::quote(images.paths[i]), json::quote(classes[static_cast<size_t>(c)]), p);
  }
  if (o.has("json"))
    write_file_atomically(o.get("json"), "predictions", [&](std::ostream& out) { out << json << "\n]\n"; });
  return 0;
}

}  // namespace mmgrad::apps
