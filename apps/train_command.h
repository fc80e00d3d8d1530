// `mmgrad train` and `mmgrad eval`: a run on the built-in shapes dataset, from the resolved
// configuration to the run folder (config.json, tokenizer.bpe, metrics.jsonl,
// checkpoint.safetensors, eval.json) and the evaluation report.
#pragma once

namespace mmgrad::apps {

extern const char* const kTrainHelp;
extern const char* const kEvalHelp;

// argv[first..] are the command's options. Returns the process exit status.
int train_command(int argc, char** argv, int first);
int eval_command(int argc, char** argv, int first);

}  // namespace mmgrad::apps
