// docs/CLI.md is generated from the commands' --help (scripts/gen_cli_md.sh): regenerating it
// with this build's binary must give the committed file, so the reference never drifts.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/core/test_util.h"

namespace {

using mmtest::read_file;

TEST(CliDocs, DocsCliMdMatchesEveryCommandsHelp) {
  const char* app = std::getenv("MMGRAD_APP");
  const char* src = std::getenv("MMGRAD_SOURCE_DIR");
  if (!app || !src) GTEST_SKIP() << "MMGRAD_APP and MMGRAD_SOURCE_DIR are set by meson test";
  const std::string fresh = mmtest::temp_path("CLI.md");
  const mmtest::AppRun r = mmtest::run_shell(std::string("bash '") + src + "/scripts/gen_cli_md.sh' '" + app + "' '" +
                                             fresh + "' 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string committed = read_file(std::string(src) + "/docs/CLI.md");
  const std::string generated = read_file(fresh);
  ASSERT_FALSE(generated.empty());
  EXPECT_TRUE(committed == generated)
      << "docs/CLI.md is out of date with the commands' --help: run scripts/gen_cli_md.sh and commit it";
  for (const char* cmd : {"## mmgrad train", "## mmgrad embed", "## mmgrad search", "## mmgrad caption",
                          "## mmgrad zeroshot", "## mmgrad data", "example"})
    EXPECT_NE(generated.find(cmd), std::string::npos) << cmd;
}

}  // namespace
