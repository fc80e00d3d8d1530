// Command-line options of the form "--name value" (repeatable ones collected in order) and
// their conversions, with errors that name the option.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mmgrad::apps {

struct Options {
  std::map<std::string, std::string> values;                  // single-valued options
  std::map<std::string, std::vector<std::string>> repeated;   // e.g. every --set
  bool help = false;                                          // --help or -h was given

  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
};

// Parses argv[first..]. Unknown options name the nearest known one; a missing value is an
// error. `flags` take no value (has(name) tells). `command` prefixes the messages ("mmgrad train").
Options parse_options(int argc, char** argv, int first, const std::string& command,
                      const std::set<std::string>& single, const std::set<std::string>& repeatable = {},
                      const std::set<std::string>& flags = {});

}  // namespace mmgrad::apps
