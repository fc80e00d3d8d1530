// Loads a checkpoint written by `mmgrad train` and embeds images and texts with it: each
// image's similarity to each text, and the best text per image. The library calls are those
// of `mmgrad embed` and `mmgrad search`.
//
//   embed_checkpoint CHECKPOINT IMAGE... -- TEXT...
//   embed_checkpoint runs/demo/checkpoint.safetensors shapes_demo/images/00000.png -- "a red circle" "a blue square"
#include <mmgrad/mmgrad.h>

#include <cstdio>
#include <cstring>

using namespace mmgrad;

int main(int argc, char** argv) {
  std::vector<std::string> images, texts;
  bool in_texts = false;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--")) in_texts = true;
    else (in_texts ? texts : images).push_back(argv[i]);
  }
  if (argc < 2 || images.empty() || texts.empty()) {
    std::fprintf(stderr, "usage: embed_checkpoint CHECKPOINT IMAGE... -- TEXT...\n");
    return 2;
  }
  try {
    // The run: configuration from the checkpoint's header, tokenizer from its folder, weights.
    const eval::LoadedRun run = eval::load_run(argv[1]);
    std::printf("%s: model %s at step %lld\n", argv[1], run.config.model.name.c_str(),
                static_cast<long long>(run.state.step));
    // Images are prepared exactly as the run prepared them for evaluation.
    const Tensor pixels = eval::load_image_files(images, train::preprocess_from_config(run.config),
                                                 train::decode_options(run.config));
    const Tensor image_embeds = eval::embed_images(*run.model, pixels);          // [N, E], unit length
    const Tensor text_embeds = eval::embed_texts(*run.model, *run.tokenizer, texts);  // [M, E]
    const Tensor similarity = matmul(image_embeds, transpose(text_embeds, 0, 1));     // cosines [N, M]
    const auto best = eval::top_k(similarity, 1);
    const std::vector<double> s = to_vector<double>(similarity);
    for (size_t i = 0; i < images.size(); ++i) {
      std::printf("%s\n", images[i].c_str());
      for (size_t j = 0; j < texts.size(); ++j) std::printf("  %.4f  %s\n", s[i * texts.size() + j], texts[j].c_str());
      std::printf("  best: %s\n", texts[static_cast<size_t>(best[i][0].first)].c_str());
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
