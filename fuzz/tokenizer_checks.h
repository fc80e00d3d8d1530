// Checks shared by the tokenizer-file targets: whatever loaded must encode any text into ids
// of its vocabulary, decode them to valid UTF-8, and build batches with the special tokens.
#pragma once
#include "data/tokenizer.h"

namespace mmgrad::fuzz {
void check_loaded_tokenizer(const data::Tokenizer& tokenizer);
}
