// Python bindings (pybind11, Debian's pybind11-dev) for prototyping with mmgrad from Python:
// tensors to and from NumPy (zero-copy both ways where the layout allows), autograd, the
// models, losses and AdamW, and whole runs: train, evaluate, load a checkpoint and embed or
// caption. The module is named mmgrad; python/tests/ holds its pytest suite.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/operators.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/train_command.h"
#include "mmgrad/mmgrad.h"

namespace py = pybind11;
using namespace mmgrad;

namespace {

// ---- NumPy ----

DType dtype_of_array(const py::array& a) {
  if (py::isinstance<py::array_t<float>>(a)) return DType::F32;
  if (py::isinstance<py::array_t<double>>(a)) return DType::F64;
  if (py::isinstance<py::array_t<int64_t>>(a)) return DType::I64;
  if (py::isinstance<py::array_t<int32_t>>(a)) return DType::I32;
  if (py::isinstance<py::array_t<bool>>(a)) return DType::Bool;
  throw py::type_error("mmgrad: unsupported NumPy dtype " + py::str(a.dtype()).cast<std::string>() +
                       " (float32, float64, int64, int32 or bool)");
}

py::dtype numpy_dtype(DType d) {
  switch (d) {
    case DType::F32: return py::dtype::of<float>();
    case DType::F64: return py::dtype::of<double>();
    case DType::I64: return py::dtype::of<int64_t>();
    case DType::I32: return py::dtype::of<int32_t>();
    case DType::Bool: return py::dtype::of<bool>();
    default: throw py::type_error("mmgrad: a " + std::string(dtype_name(d)) + " tensor has no NumPy dtype; .to(f32) first");
  }
}

// The array's memory used in place when its strides are non-negative multiples of the item
// size (any C, Fortran or sliced layout); the tensor keeps the array alive. Otherwise a copy.
Tensor from_numpy(py::array a) {
  const DType dtype = dtype_of_array(a);
  const auto item = static_cast<int64_t>(a.itemsize());
  Shape shape, strides;
  bool in_place = a.writeable();
  int64_t extent = 1;  // elements spanned
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    shape.push_back(static_cast<int64_t>(a.shape(d)));
    const auto st = static_cast<int64_t>(a.strides(d));
    if (st < 0 || st % item != 0) in_place = false;
    strides.push_back(st / item);
    if (a.shape(d) > 0) extent += (a.shape(d) - 1) * (st / item);
  }
  if (!in_place) {
    py::array c = py::array::ensure(a, py::array::c_style | py::array::forcecast);
    return from_numpy(c);
  }
  auto impl = std::make_shared<TensorImpl>();
  py::object keep = a;  // released with the GIL held when the last tensor goes
  impl->storage = std::make_shared<Storage>(
      a.mutable_data(), static_cast<size_t>(extent * item), Device::cpu(), [keep]() mutable {
        py::gil_scoped_acquire gil;
        keep = py::object();
      });
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(impl);
}

// A view of a CPU tensor's memory (any strides); the array keeps the tensor alive.
py::array to_numpy(const Tensor& t) {
  if (t.device().type != DeviceType::CPU) return to_numpy(t.to(Device::cpu()));
  const auto item = static_cast<py::ssize_t>(dtype_size(t.dtype()));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides;
  for (int64_t s : t.strides()) strides.push_back(static_cast<py::ssize_t>(s) * item);
  auto* owner = new Tensor(t.detach());
  py::capsule base(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(numpy_dtype(t.dtype()), shape, strides, t.raw_data(), base);
}

Tensor as_tensor(const py::object& o) {
  if (py::isinstance<Tensor>(o)) return o.cast<Tensor>();
  if (py::isinstance<py::array>(o)) return from_numpy(o.cast<py::array>());
  if (py::isinstance<py::float_>(o) || py::isinstance<py::int_>(o))
    return from_data(std::vector<double>{o.cast<double>()}, {}).to(DType::F32);
  return from_numpy(py::array(o));
}

// a (op) b where either may be a Python number: numbers take the tensor's dtype, as in
// NumPy and PyTorch (2 * f64 tensor stays f64).
Tensor binary(const py::object& x, const py::object& y, char op) {
  const bool x_num = py::isinstance<py::float_>(x) || py::isinstance<py::int_>(x);
  const bool y_num = py::isinstance<py::float_>(y) || py::isinstance<py::int_>(y);
  if (y_num && !x_num) {
    const Tensor a = as_tensor(x);
    const double b = y.cast<double>();
    switch (op) {
      case '+': return add(a, b);
      case '-': return sub(a, b);
      case '*': return mul(a, b);
      default: return div(a, b);
    }
  }
  if (x_num && !y_num) {
    const double a = x.cast<double>();
    const Tensor b = as_tensor(y);
    switch (op) {
      case '+': return add(b, a);
      case '-': return add(neg(b), a);
      case '*': return mul(b, a);
      default: return mul(reciprocal(b), a);
    }
  }
  const Tensor a = as_tensor(x), b = as_tensor(y);
  switch (op) {
    case '+': return add(a, b);
    case '-': return sub(a, b);
    case '*': return mul(a, b);
    default: return div(a, b);
  }
}

std::vector<int64_t> dims_of(const py::object& dim) {
  if (dim.is_none()) return {};
  if (py::isinstance<py::int_>(dim)) return {dim.cast<int64_t>()};
  return dim.cast<std::vector<int64_t>>();
}

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "f64" || s == "float64") return DType::F64;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "i64" || s == "int64") return DType::I64;
  if (s == "i32" || s == "int32") return DType::I32;
  if (s == "bool") return DType::Bool;
  throw py::value_error("mmgrad: unknown dtype '" + s + "' (f32, f64, bf16, i64, i32, bool)");
}

train::NamedTensors named(const py::object& params) {
  train::NamedTensors out;
  if (py::isinstance<py::dict>(params)) {
    for (auto [k, v] : params.cast<py::dict>()) out.emplace_back(k.cast<std::string>(), v.cast<Tensor>());
  } else {
    for (auto item : params) {
      auto pair = item.cast<py::tuple>();
      out.emplace_back(pair[0].cast<std::string>(), pair[1].cast<Tensor>());
    }
  }
  return out;
}

py::dict named_dict(const train::NamedTensors& ts) {
  py::dict d;
  for (const auto& [k, v] : ts) d[py::str(k)] = v;
  return d;
}

// The resolved configuration as a Python dict (through its JSON).
py::object config_dict(const train::RunConfig& c) { return py::module_::import("json").attr("loads")(train::to_json(c)); }

train::RunConfig config_from(const std::string& preset, const py::dict& keys) {
  train::RunConfig c = train::run_preset(preset);
  for (auto [k, v] : keys) {
    std::string value = py::isinstance<py::bool_>(v) ? (v.cast<bool>() ? "true" : "false") : py::str(v).cast<std::string>();
    train::set_value(c, k.cast<std::string>(), value);
  }
  return c;
}

// Runs an `mmgrad` command line in-process (the same code as the binary).
int run_cli(int (*command)(int, char**, int), const std::vector<std::string>& args) {
  std::vector<std::string> full{"mmgrad", "cmd"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  py::gil_scoped_release release;
  return command(static_cast<int>(argv.size()), argv.data(), 2);
}

std::vector<std::string> key_args(const py::dict& keys) {
  std::vector<std::string> out;
  for (auto [k, v] : keys) {
    const std::string value = py::isinstance<py::bool_>(v) ? (v.cast<bool>() ? "true" : "false") : py::str(v).cast<std::string>();
    out.push_back("--set");
    out.push_back(k.cast<std::string>() + "=" + value);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A loaded checkpoint with the inference helpers.
struct PyRun {
  eval::LoadedRun run;
  Tensor images_from(const py::object& images) const {
    if (py::isinstance<py::list>(images) || py::isinstance<py::str>(images)) {
      std::vector<std::string> paths = py::isinstance<py::str>(images) ? std::vector<std::string>{images.cast<std::string>()}
                                                                        : images.cast<std::vector<std::string>>();
      return eval::load_image_files(paths, train::preprocess_from_config(run.config), train::decode_options(run.config));
    }
    return as_tensor(images);
  }
};

}  // namespace

PYBIND11_MODULE(mmgrad, m) {
  m.doc() = "mmgrad: a C++ tensor engine with autograd for multimodal learning (CLIP, SigLIP, ITM, captioning)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  // ---- Tensor ----
  py::class_<Tensor>(m, "Tensor", py::buffer_protocol())
      .def(py::init([](const py::object& o) { return as_tensor(o); }), py::arg("data"))
      .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape())); })
      .def_property_readonly("dtype", [](const Tensor& t) { return std::string(dtype_name(t.dtype())); })
      .def_property_readonly("device", [](const Tensor& t) { return t.device().str(); })
      .def_property_readonly("ndim", &Tensor::dim)
      .def("numel", &Tensor::numel)
      .def("numpy", &to_numpy, "a NumPy view of the tensor's memory (a copy for GPU tensors)")
      .def("__array__", [](const Tensor& t, py::object) { return to_numpy(t); }, py::arg("dtype") = py::none())
      .def("item", [](const Tensor& t) { return item(t); })
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](Tensor& t, bool on) { t.set_requires_grad(on); })
      .def("requires_grad_", [](Tensor& t, bool on) { return t.set_requires_grad(on); }, py::arg("on") = true)
      .def_property_readonly("grad", [](const Tensor& t) -> py::object {
        Tensor g = t.grad();
        return g.defined() ? py::cast(g) : py::none();
      })
      .def("zero_grad", [](const Tensor& t) { t.set_grad(Tensor()); })
      .def("backward", [](const Tensor& t, py::object grad, bool retain) {
             t.backward(grad.is_none() ? Tensor() : as_tensor(grad), retain);
           }, py::arg("grad") = py::none(), py::arg("retain_graph") = false)
      .def("detach", &Tensor::detach)
      .def("clone", &Tensor::clone)
      .def("contiguous", &Tensor::contiguous)
      .def("to", [](const Tensor& t, const std::string& where) {
             if (where.rfind("cpu", 0) == 0 || where.rfind("cuda", 0) == 0) return t.to(Device::parse(where));
             return t.to(parse_dtype(where));
           }, py::arg("dtype_or_device"))
      .def("reshape", [](const Tensor& t, std::vector<int64_t> s) { return reshape(t, Shape(s.begin(), s.end())); })
      .def("transpose", [](const Tensor& t, int64_t a, int64_t b) { return transpose(t, a, b); })
      .def("permute", &Tensor::permute)
      .def("unsqueeze", &Tensor::unsqueeze)
      .def("squeeze", &Tensor::squeeze)
      .def_property_readonly("T", [](const Tensor& t) { return t.t(); })
      .def("sum", [](const Tensor& t, py::object dim, bool keep) { return sum(t, dims_of(dim), keep); },
           py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def("mean", [](const Tensor& t, py::object dim, bool keep) { return mean(t, dims_of(dim), keep); },
           py::arg("dim") = py::none(), py::arg("keepdim") = false)
      .def("__add__", [](const py::object& a, const py::object& b) { return binary(a, b, '+'); })
      .def("__radd__", [](const py::object& a, const py::object& b) { return binary(b, a, '+'); })
      .def("__sub__", [](const py::object& a, const py::object& b) { return binary(a, b, '-'); })
      .def("__rsub__", [](const py::object& a, const py::object& b) { return binary(b, a, '-'); })
      .def("__mul__", [](const py::object& a, const py::object& b) { return binary(a, b, '*'); })
      .def("__rmul__", [](const py::object& a, const py::object& b) { return binary(b, a, '*'); })
      .def("__truediv__", [](const py::object& a, const py::object& b) { return binary(a, b, '/'); })
      .def("__rtruediv__", [](const py::object& a, const py::object& b) { return binary(b, a, '/'); })
      .def("__matmul__", [](const Tensor& a, const py::object& b) { return matmul(a, as_tensor(b)); })
      .def("__neg__", [](const Tensor& a) { return neg(a); })
      .def("__pow__", [](const Tensor& a, double e) { return pow(a, e); })
      .def("__len__", [](const Tensor& t) { return t.dim() ? t.shape()[0] : 0; })
      .def("__repr__", [](const Tensor& t) { return t.str(); });

  m.def("tensor", [](const py::object& o, py::object dtype, bool requires_grad) {
          Tensor t = as_tensor(o);
          if (!dtype.is_none()) t = t.to(parse_dtype(dtype.cast<std::string>()));
          else t = t.clone();  // tensor() copies, as torch.tensor does; from_numpy shares
          if (requires_grad) t.set_requires_grad();
          return t;
        }, py::arg("data"), py::arg("dtype") = py::none(), py::arg("requires_grad") = false,
        "a new tensor holding a copy of data (a NumPy array, list or number)");
  m.def("from_numpy", &from_numpy, py::arg("array"),
        "a tensor that uses the array's memory (no copy when the strides allow; changes show in both)");
  m.def("zeros", [](std::vector<int64_t> s, const std::string& d) { return zeros(Shape(s.begin(), s.end()), parse_dtype(d)); },
        py::arg("shape"), py::arg("dtype") = "f32");
  m.def("ones", [](std::vector<int64_t> s, const std::string& d) { return ones(Shape(s.begin(), s.end()), parse_dtype(d)); },
        py::arg("shape"), py::arg("dtype") = "f32");
  m.def("randn", [](std::vector<int64_t> s, const std::string& d, uint64_t seed) {
          Generator g(seed);
          return randn(Shape(s.begin(), s.end()), parse_dtype(d), Device::cpu(), &g);
        }, py::arg("shape"), py::arg("dtype") = "f32", py::arg("seed") = 0);

  // ---- ops (differentiable) ----
  m.def("matmul", [](const py::object& a, const py::object& b) { return matmul(as_tensor(a), as_tensor(b)); });
  m.def("sum", [](const Tensor& t, py::object dim, bool k) { return sum(t, dims_of(dim), k); }, py::arg("x"),
        py::arg("dim") = py::none(), py::arg("keepdim") = false);
  m.def("mean", [](const Tensor& t, py::object dim, bool k) { return mean(t, dims_of(dim), k); }, py::arg("x"),
        py::arg("dim") = py::none(), py::arg("keepdim") = false);
  for (auto [name, fn] : std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>>{
           {"exp", &exp}, {"log", &log}, {"sqrt", &sqrt}, {"tanh", &tanh}, {"sigmoid", &sigmoid}, {"relu", &relu},
           {"gelu", &gelu}, {"quick_gelu", &quick_gelu}, {"abs", &abs}, {"neg", &neg}, {"square", &square}})
    m.def(name, fn, py::arg("x"));
  m.def("softmax", &softmax, py::arg("x"), py::arg("dim") = -1);
  m.def("log_softmax", &log_softmax, py::arg("x"), py::arg("dim") = -1);
  m.def("cross_entropy", [](const Tensor& logits, const py::object& target, int64_t ignore, double smoothing) {
          return cross_entropy(logits, as_tensor(target).to(DType::I64), ignore, smoothing);
        }, py::arg("logits"), py::arg("target"), py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0);
  m.def("layer_norm", &layer_norm, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps") = 1e-5);
  m.def("linear", &linear, py::arg("x"), py::arg("weight"), py::arg("bias") = Tensor());
  m.def("scaled_dot_product_attention",
        [](const Tensor& q, const Tensor& k, const Tensor& v, bool causal) { return scaled_dot_product_attention(q, k, v, causal); },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal") = false);
  m.def("concat", &concat, py::arg("tensors"), py::arg("dim") = 0);
  m.def("stack", &stack, py::arg("tensors"), py::arg("dim") = 0);
  m.def("argmax", &argmax, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false);
  m.def("l2_normalize", &nn::l2_normalize, py::arg("x"));

  // `with mmgrad.no_grad(): ...` records nothing inside.
  struct PyNoGrad {
    std::unique_ptr<NoGradGuard> guard;
  };
  py::class_<PyNoGrad>(m, "no_grad")
      .def(py::init<>())
      .def("__enter__", [](PyNoGrad& s) { s.guard = std::make_unique<NoGradGuard>(); })
      .def("__exit__", [](PyNoGrad& s, py::args) { s.guard.reset(); });
  m.def("gradcheck", [](const std::function<Tensor(std::vector<Tensor>)>& fn, const std::vector<Tensor>& inputs) {
          const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return fn(in); }, inputs);
          if (!r.ok) throw py::value_error("gradcheck: " + r.message);
          return r.max_abs_error;
        }, py::arg("fn"), py::arg("inputs"),
        "compares backward with central differences (f64 inputs); returns the largest error or raises");

  // ---- models, losses, optimizer ----
  py::class_<nn::ClipModel, std::shared_ptr<nn::ClipModel>>(m, "ClipModel")
      .def(py::init([](const std::string& preset, uint64_t seed, py::kwargs keys) {
             const train::RunConfig c = config_from(preset, keys ? py::dict(keys) : py::dict());
             Generator init(seed);
             return std::make_shared<nn::ClipModel>(c.model, init);
           }), py::arg("preset") = "shapes-small", py::arg("seed") = 0,
           "a model of a run preset (shapes-small, clip-tiny, clip-b32); keyword arguments set model keys")
      .def("encode_image", &nn::ClipModel::encode_image, py::arg("images"))
      .def("encode_text", [](const nn::ClipModel& mdl, const py::object& ids) { return mdl.encode_text(as_tensor(ids).to(DType::I64)); },
           py::arg("ids"))
      .def("named_parameters", [](const nn::ClipModel& mdl) { return named_dict(mdl.named_parameters()); })
      .def("num_parameters", &nn::ClipModel::num_parameters)
      .def_property_readonly("logit_scale", [](const nn::ClipModel& mdl) { return mdl.logit_scale; })
      .def("to", [](nn::ClipModel& mdl, const std::string& dtype) { mdl.to(parse_dtype(dtype)); });
  m.def("clip_loss", &nn::clip_loss, py::arg("image_embeds"), py::arg("text_embeds"), py::arg("logit_scale"));
  m.def("siglip_loss", &nn::siglip_loss, py::arg("image_embeds"), py::arg("text_embeds"), py::arg("t_prime"),
        py::arg("bias"));

  py::class_<train::AdamW>(m, "AdamW")
      .def(py::init([](const py::object& params, double wd) { return std::make_unique<train::AdamW>(named(params), wd); }),
           py::arg("params"), py::arg("weight_decay") = 0.1,
           "AdamW over named parameters (a dict or (name, tensor) pairs); no decay on 1-D ones")
      .def("step", &train::AdamW::step, py::arg("lr"))
      .def("zero_grad", &train::AdamW::zero_grad);

  // ---- runs ----
  m.def("train", [](const std::string& preset, py::object run_dir, py::object resume, py::kwargs keys) {
          std::vector<std::string> args;
          if (resume.is_none()) args = {"--preset", preset};
          else args = {"--resume", resume.cast<std::string>()};
          if (!run_dir.is_none()) args.insert(args.end(), {"--run-dir", run_dir.cast<std::string>()});
          const auto more = key_args(keys ? py::dict(keys) : py::dict());
          args.insert(args.end(), more.begin(), more.end());
          const int rc = run_cli(&apps::train_command, args);
          if (rc != 0) throw Error("mmgrad.train", "training stopped early (status " + std::to_string(rc) + ")");
        }, py::arg("preset") = "shapes-small", py::arg("run_dir") = py::none(), py::arg("resume") = py::none(),
        "`mmgrad train` in-process: keyword arguments are --set keys (steps=300, lr=1e-3, ...)");
  m.def("evaluate", [](const std::string& checkpoint, const std::string& split, py::object samples) {
          const std::string json_path = (std::filesystem::temp_directory_path() /
                                         ("mmgrad_eval_" + std::to_string(::getpid()) + ".json")).string();
          std::vector<std::string> args{"--checkpoint", checkpoint, "--split", split, "--json", json_path};
          if (!samples.is_none()) args.insert(args.end(), {"--samples", py::str(samples).cast<std::string>()});
          run_cli(&apps::eval_command, args);
          const std::string text = read_file(json_path);
          std::filesystem::remove(json_path);
          return py::module_::import("json").attr("loads")(text);
        }, py::arg("checkpoint"), py::arg("split") = "held-out", py::arg("samples") = py::none(),
        "`mmgrad eval` in-process; returns the figures as a dict");

  py::class_<PyRun, std::shared_ptr<PyRun>>(m, "Run")
      .def_property_readonly("config", [](const PyRun& r) { return config_dict(r.run.config); })
      .def_property_readonly("step", [](const PyRun& r) { return r.run.state.step; })
      .def("embed_images", [](const PyRun& r, const py::object& images) {
             return to_numpy(eval::embed_images(*r.run.model, r.images_from(images)));
           }, py::arg("images"), "image paths (or a [N, 3, S, S] array) -> unit embeddings [N, E]")
      .def("embed_texts", [](const PyRun& r, const std::vector<std::string>& texts) {
             return to_numpy(eval::embed_texts(*r.run.model, *r.run.tokenizer, texts));
           }, py::arg("texts"))
      .def("caption", [](const PyRun& r, const py::object& images) {
             return eval::caption_images(*r.run.model, *r.run.tokenizer, r.images_from(images));
           }, py::arg("images"))
      .def("encode", [](const PyRun& r, const std::vector<std::string>& texts) {
             return to_numpy(r.run.tokenizer->encode_batch(texts, r.run.config.model.context_length));
           }, py::arg("texts"), "token ids [N, context_length] as the model reads them");
  m.def("load_run", [](const std::string& checkpoint) { return std::make_shared<PyRun>(PyRun{eval::load_run(checkpoint)}); },
        py::arg("checkpoint"), "a checkpoint written by train, with its configuration and tokenizer");
}
