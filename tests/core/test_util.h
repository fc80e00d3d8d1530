// Helpers shared by the core and autograd test suites.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace mmtest {

// Runs `fn`, expects it to throw mmgrad::Error whose op() is `op` (unless empty) and whose
// full message contains every string in `parts`. Returns the message ("" if nothing thrown).
inline std::string expect_error(const std::function<void()>& fn, const std::string& op,
                                std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const mmgrad::Error& e) {
    const std::string what = e.what();
    if (!op.empty()) {
      EXPECT_EQ(e.op(), op) << "message: " << what;
    }
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos)
          << "expected the message to contain \"" << p << "\"; message: " << what;
    return what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mmgrad::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected mmgrad::Error (op " << op << "), nothing was thrown";
  return "";
}

#define EXPECT_MMGRAD_ERROR(stmt, op, ...)                        \
  do {                                                            \
    SCOPED_TRACE(#stmt);                                          \
    ::mmtest::expect_error([&] { (void)(stmt); }, op, {__VA_ARGS__}); \
  } while (0)

// Reads a CPU tensor's elements in row-major logical order straight from its storage
// through shape/strides/offset, without any mmgrad op (an independent check of views).
template <typename T>
std::vector<T> strided_values(const mmgrad::Tensor& t) {
  std::vector<T> out;
  const T* base = static_cast<const T*>(t.storage().data()) + t.offset();
  const int nd = t.dim();
  const int64_t n = t.numel();
  std::vector<int64_t> idx(nd, 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t off = 0;
    for (int d = 0; d < nd; ++d) off += idx[d] * t.strides()[d];
    out.push_back(base[off]);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < t.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

inline std::vector<float> fvec(const mmgrad::Tensor& t) { return mmgrad::to_vector<float>(t); }
inline std::vector<double> dvec(const mmgrad::Tensor& t) { return mmgrad::to_vector<double>(t); }
inline std::vector<int64_t> ivec(const mmgrad::Tensor& t) { return mmgrad::to_vector<int64_t>(t); }

// Element-wise |a - b| <= tol, with a message naming the first mismatch.
inline ::testing::AssertionResult near_all(const std::vector<double>& got,
                                           const std::vector<double>& want, double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " differs from expected " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol))
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", want " << want[i] << " (tol " << tol
             << ")";
  return ::testing::AssertionSuccess();
}

inline mmgrad::Tensor f32(std::vector<float> v, mmgrad::Shape s) {
  return mmgrad::from_data<float>(v, s);
}
inline mmgrad::Tensor f64(std::vector<double> v, mmgrad::Shape s) {
  return mmgrad::from_data<double>(v, s);
}
inline mmgrad::Tensor i64(std::vector<int64_t> v, mmgrad::Shape s) {
  return mmgrad::from_data<int64_t>(v, s);
}

// Restores the thread count a test changed.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(mmgrad::num_threads()) {}
  ~ThreadCountGuard() { mmgrad::set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

// A path in this test process's own temporary folder (created on first use).
inline std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("mmgrad_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// An f64 leaf that requires grad.
inline mmgrad::Tensor leaf(std::vector<double> v, mmgrad::Shape s) {
  mmgrad::Tensor t = mmgrad::from_data<double>(v, s);
  t.set_requires_grad();
  return t;
}

// The `mmgrad` binary (path in MMGRAD_APP, set by meson test) run as a user would.
struct AppRun {
  int status = -1;  // exit code; -1 when it could not run or was killed
  std::string out;  // stdout and stderr together
};

// A whole file's bytes ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A shell command line, its stdout and stderr together.
inline AppRun run_shell(const std::string& cmd) {
  AppRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `env` holds env(1) assignments ("NAME=value", "-u NAME"), applied before the command.
inline AppRun run_app(const std::string& args, const std::string& env = "") {
  const char* app = std::getenv("MMGRAD_APP");
  if (!app) return AppRun{};
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on a chained operator+.
  std::string cmd = "env ";
  cmd.append(env).append(" '").append(app).append("' ").append(args).append(" 2>&1");
  return run_shell(cmd);
}

}  // namespace mmtest
