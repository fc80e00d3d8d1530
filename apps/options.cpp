#include "apps/options.h"

#include "core/error.h"
#include "core/suggest.h"

namespace mmgrad::apps {

std::string Options::get(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

int64_t Options::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values.at(name);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("mmgrad", "option --" + name + " expects an integer, got '" + v + "'");
}

double Options::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string& v = values.at(name);
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  fail("mmgrad", "option --" + name + " expects a number, got '" + v + "'");
}

Options parse_options(int argc, char** argv, int first, const std::string& command,
                      const std::set<std::string>& single, const std::set<std::string>& repeatable,
                      const std::set<std::string>& flags) {
  Options out;
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    const std::string name = a.rfind("--", 0) == 0 ? a.substr(2) : "";
    if (flags.count(name)) {
      out.values[name] = "true";
      continue;
    }
    if (name.empty() || (!single.count(name) && !repeatable.count(name))) {
      std::vector<std::string> known(single.begin(), single.end());
      known.insert(known.end(), repeatable.begin(), repeatable.end());
      known.insert(known.end(), flags.begin(), flags.end());
      const std::string near = nearest_name(name.empty() ? a : name, known);
      fail(command, "unknown option '" + a + "'" + (near.empty() ? "" : " (did you mean --" + near + "?)") +
                        "; see " + command + " --help");
    }
    if (i + 1 >= argc) fail(command, "option '" + a + "' needs a value");
    const std::string value = argv[++i];
    if (repeatable.count(name))
      out.repeated[name].push_back(value);
    else
      out.values[name] = value;
  }
  return out;
}

}  // namespace mmgrad::apps
