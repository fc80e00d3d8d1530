// report.html for a run (eval/report.h), with sample images chosen from what the run was
// evaluated on: the held-out shapes, the rows of an evaluation table, or the images of a
// class folder (captioned with their class names).
#pragma once
#include <string>

#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/run_config.h"

namespace mmgrad::apps {

// Writes `path`; data_path is the evaluated table or class folder ("" = the held-out shapes).
// Returns the number of images in the page.
int64_t write_run_report(const std::string& path, const std::string& run_dir, const nn::ClipModel& model,
                         const data::Tokenizer& tokenizer, const train::RunConfig& c, const std::string& eval_json,
                         const std::string& eval_text, const std::string& data_path);

}  // namespace mmgrad::apps
