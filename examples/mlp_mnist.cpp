// An MLP trained with autograd to classify images from a folder of class folders: MNIST's
// digits (`mmgrad data fetch mnist` writes datasets/mnist/test/<digit>/) or any such folder,
// e.g. the shapes from `mmgrad data shapes --out shapes_demo` (shapes_demo/classes).
// Every fifth image is held out; the program prints the held-out accuracy and exits
// non-zero if the MLP did no better than chance.
//
//   mlp_mnist [FOLDER] [STEPS]      (defaults: datasets/mnist/test, 300)
#include <mmgrad/mmgrad.h>

#include <cstdio>
#include <cstdlib>

using namespace mmgrad;

int main(int argc, char** argv) {
  const std::string root = argc > 1 ? argv[1] : "datasets/mnist/test";
  const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 300;
  try {
    // 1. The images, resized to 28x28 and scaled to [-1, 1], flattened into vectors.
    const data::ClassFolder folder = data::read_class_folder(root);
    const Tensor images = eval::load_image_files(folder.image_paths, data::plain_preprocess(28), {});
    const int64_t n = images.shape()[0], features = 3 * 28 * 28;
    const int64_t classes = static_cast<int64_t>(folder.class_names.size());
    std::vector<int64_t> train_rows, test_rows;
    for (int64_t i = 0; i < n; ++i) (i % 5 == 4 ? test_rows : train_rows).push_back(i);
    auto rows_of = [&](const std::vector<int64_t>& rows) {
      return reshape(index_select(images, 0, from_data(rows, {static_cast<int64_t>(rows.size())})), {-1, features});
    };
    auto labels_of = [&](const std::vector<int64_t>& rows) {
      std::vector<int64_t> out;
      for (int64_t r : rows) out.push_back(folder.labels[static_cast<size_t>(r)]);
      return from_data(out, {static_cast<int64_t>(out.size())});
    };
    const Tensor x_train = rows_of(train_rows), y_train = labels_of(train_rows);
    const Tensor x_test = rows_of(test_rows), y_test = labels_of(test_rows);
    std::printf("%lld classes, %zu training and %zu held-out images from %s\n", static_cast<long long>(classes),
                train_rows.size(), test_rows.size(), root.c_str());

    // 2. Two linear layers with a ReLU between; AdamW over their parameters.
    Generator gen(0);
    nn::Linear fc1(features, 128, true, gen), fc2(128, classes, true, gen);
    auto forward = [&](const Tensor& x) { return fc2.forward(relu(fc1.forward(x))); };
    train::AdamW optimizer({{"fc1.weight", fc1.weight}, {"fc1.bias", fc1.bias}, {"fc2.weight", fc2.weight},
                            {"fc2.bias", fc2.bias}},
                           /*weight_decay=*/1e-4);

    // 3. Full-batch steps: forward, loss, backward, update.
    for (int64_t step = 1; step <= steps; ++step) {
      optimizer.zero_grad();
      Tensor loss = cross_entropy(forward(x_train), y_train);
      loss.backward();
      optimizer.step(1e-3);
      if (step % 50 == 0 || step == steps) std::printf("step %4lld  loss %.4f\n", static_cast<long long>(step), item(loss));
    }

    // 4. Held-out accuracy.
    NoGradGuard no_grad;
    const std::vector<int64_t> predicted = to_vector<int64_t>(argmax(forward(x_test), 1));
    const std::vector<int64_t> truth = to_vector<int64_t>(y_test);
    int64_t right = 0;
    for (size_t i = 0; i < truth.size(); ++i) right += predicted[i] == truth[i];
    const double accuracy = static_cast<double>(right) / static_cast<double>(truth.size());
    std::printf("held-out accuracy %.1f%% (chance %.1f%%)\n", 100 * accuracy, 100.0 / static_cast<double>(classes));
    return accuracy > 1.0 / static_cast<double>(classes) ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n(get MNIST with: mmgrad data fetch mnist)\n", e.what());
    return 1;
  }
}
