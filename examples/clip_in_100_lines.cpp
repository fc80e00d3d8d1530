// CLIP trained from scratch in under a hundred lines: the built-in shapes dataset (coloured
// shapes with English captions), a BPE tokenizer trained on its captions, a small ViT and
// text transformer, the InfoNCE loss, AdamW with warmup and cosine decay, and at the end a
// zero-shot test on colour-shape pairs the model never saw: "a {shape}" prompts against
// held-out images. Exits non-zero if the loss did not fall.
//
//   clip_in_100_lines [STEPS]     (default 400: about a minute on 2 cores)
#include <mmgrad/mmgrad.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mmgrad;

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 400, batch = 64;

  // Data: procedural samples (seeded, no download) and a tokenizer trained on their captions.
  const data::ShapesDataset train_set(data::Split::Train, 1000000, /*seed=*/0, /*image_size=*/32);
  const data::BpeTokenizer tokenizer = data::train_shapes_tokenizer(train_set, /*vocab_size=*/512, 5000);

  // Model: two towers with CLIP's projections and learned temperature (logit_scale).
  nn::ModelConfig config = nn::preset("clip-tiny");
  config.vision_width = config.text_width = config.embed_dim = 64;
  config.vision_layers = config.text_layers = 2;
  config.fusion_layers = config.caption_layers = 0;  // contrastive only
  config.context_length = 16;
  config.vocab_size = tokenizer.vocab_size();
  config.eot_token_id = tokenizer.end_token();
  Generator init(0);
  nn::ClipModel model(config, init);
  const train::NamedTensors params = model.named_parameters();
  train::AdamW optimizer(params, /*weight_decay=*/0.1);  // no decay on 1-D parameters
  std::printf("%lld parameters\n", static_cast<long long>(model.num_parameters()));

  // Training: each step embeds a batch of images and captions and pulls matching pairs
  // together in the joint space, pushing the other pairs of the batch apart.
  double first_loss = 0, last_loss = 0;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < batch; ++i) indices.push_back(step * batch + i);
    const data::ImageTextBatch b = data::shapes_batch(train_set, tokenizer, config.context_length, indices);
    Tensor loss = nn::clip_loss(model.encode_image(b.images), model.encode_text(b.ids), model.logit_scale);
    optimizer.zero_grad();
    loss.backward();
    train::clip_grad_norm(params, 1.0);
    optimizer.step(train::warmup_cosine_lr(step, 50, steps, 2e-3, 1e-5));
    {
      NoGradGuard no_grad;  // CLIP clamps the temperature at 100
      if (item(model.logit_scale) > std::log(100.0)) fill_(model.logit_scale, std::log(100.0));
    }
    last_loss = item(loss);
    if (step == 0) first_loss = last_loss;
    if ((step + 1) % 50 == 0) std::printf("step %4lld  loss %.4f\n", static_cast<long long>(step + 1), last_loss);
  }

  // Zero-shot: which of the four shape names best matches each held-out one-object image?
  NoGradGuard no_grad;
  const data::ShapesDataset held_out(data::Split::HeldOut, 400, 0, 32);
  std::vector<Tensor> images;
  std::vector<int64_t> truth;
  for (int64_t i = 0; i < held_out.size(); ++i) {
    const data::ShapesSample s = held_out.get(i);
    if (s.objects.size() != 1) continue;
    images.push_back(s.image);
    truth.push_back(static_cast<int64_t>(s.objects[0].shape));
  }
  const Tensor classes = eval::class_embeddings(model, tokenizer, data::shape_names(), {"a {}", "a picture of a {}"});
  const Tensor scores = matmul(eval::embed_images(model, stack(images, 0)), transpose(classes, 0, 1));
  const std::vector<int64_t> predicted = to_vector<int64_t>(argmax(scores, 1));
  int64_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) right += predicted[i] == truth[i];
  std::printf("loss %.3f -> %.3f; zero-shot shape accuracy on %zu unseen colour-shape images: %.1f%% (chance 25%%)\n",
              first_loss, last_loss, truth.size(), 100.0 * static_cast<double>(right) / static_cast<double>(truth.size()));
  return last_loss < first_loss ? 0 : 1;
}
