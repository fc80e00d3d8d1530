// report.html as a user sees it: written by `mmgrad train` and `mmgrad eval`, then opened in
// headless Chromium (Debian's chromium; the test command installs it), which must render
// every section and decode every image without console errors. A screenshot goes to the
// run folder (report.png). Skips when chromium is missing, except under CI.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "data/image.h"
#include "eval/report.h"
#include "tests/core/test_util.h"

namespace {

namespace fs = std::filesystem;
using mmtest::AppRun;

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(p)) return p;
  return "";
}

using mmtest::read_file;

TEST(Report, Base64AndChartsAreWellFormed) {
  EXPECT_EQ(mmgrad::eval::base64(""), "");
  EXPECT_EQ(mmgrad::eval::base64("f"), "Zg==");
  EXPECT_EQ(mmgrad::eval::base64("fo"), "Zm8=");
  EXPECT_EQ(mmgrad::eval::base64("foobar"), "Zm9vYmFy");
  const std::string svg = mmgrad::eval::svg_line_chart("loss", {{"clip", {{1, 4.0}, {2, 3.0}, {3, 2.5}}}});
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find(">clip<"), std::string::npos);
  EXPECT_NE(mmgrad::eval::svg_line_chart("empty", {}).find("no data"), std::string::npos);
}

TEST(Report, TrainAndEvalWriteAPageThatChromiumRendersWithoutErrors) {
  if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP is not set";
  if (!mmgrad::data::image_decoding_available()) GTEST_SKIP() << "built without libstb";
  const std::string browser = chromium();
  if (browser.empty()) {
    if (std::getenv("CI")) FAIL() << "chromium is missing under CI (scripts/test.sh installs Debian's chromium)";
    GTEST_SKIP() << "chromium is not installed (apt-get install chromium)";
  }
  const std::string dir = mmtest::temp_path("report_run");
  fs::remove_all(dir);
  AppRun t = mmtest::run_app("train --run-dir " + dir +
                             " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32"
                             " --set embed_dim=32 --set vision_layers=1 --set text_layers=1 --set vision_heads=2"
                             " --set text_heads=2 --set batch_size=16 --set train_size=2000 --set tokenizer_vocab=400"
                             " --set eval_size=40 --set steps=12 --set log_every=4");
  ASSERT_EQ(t.status, 0) << t.out;
  const std::string page = dir + "/report.html";
  ASSERT_TRUE(fs::exists(page)) << t.out;
  EXPECT_NE(t.out.find("report: " + page), std::string::npos) << t.out;

  // `mmgrad eval` rewrites it (and can write elsewhere).
  const std::string again = dir + "/eval_report.html";
  AppRun e = mmtest::run_app("eval --checkpoint " + dir + "/checkpoint.safetensors --report " + again);
  ASSERT_EQ(e.status, 0) << e.out;
  ASSERT_TRUE(fs::exists(again));

  const std::string html = read_file(page);
  for (const char* id : {"id=\"curves\"", "id=\"figures\"", "id=\"retrieval\"", "id=\"captions\"", "id=\"attention\"",
                         "shape_accuracy", "image_to_text R@1", "class=\"px hit\"", "<polyline"})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg")) << "the page must not load anything from the network";

  // Rendered: the page's own check counts decoded images and charts; Chromium's log shows
  // console messages, which must hold no error.
  const std::string flags = " --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,2600 ";
  const std::string url = "file://" + fs::absolute(page).string();
  AppRun dom = mmtest::run_shell("'" + browser + "'" + flags + "--enable-logging=stderr --v=0 --dump-dom '" + url +
                                 "' 2>" + dir + "/chromium.log");
  ASSERT_EQ(dom.status, 0) << read_file(dir + "/chromium.log");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom.out, m, std::regex(R"(id="render-check">rendered: (\d+) images, 2 charts)")))
      << dom.out.substr(0, 2000);
  EXPECT_GE(std::stoi(m[1]), 30);  // 4 queries x 5 + captions + attention maps
  const std::string log = read_file(dir + "/chromium.log");
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line))
    if (line.find("CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos)
      ADD_FAILURE() << "console message: " << line;

  AppRun shot = mmtest::run_shell("'" + browser + "'" + flags + "--screenshot=" + dir + "/report.png '" + url + "' 2>&1");
  ASSERT_EQ(shot.status, 0) << shot.out;
  const mmgrad::data::Image png = mmgrad::data::decode_image_file(dir + "/report.png");
  EXPECT_EQ(png.width, 1200);
}

}  // namespace
