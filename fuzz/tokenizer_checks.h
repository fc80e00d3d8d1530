// Checks shared by the tokenizer-file targets: whatever loaded must encode any text into ids
// of its vocabulary (or refuse with an error naming its file: a vocabulary without a byte's
// symbol and without an unknown token cannot encode that byte), decode them to valid UTF-8,
// and build batches with the special tokens.
#pragma once
#include <string>

#include "data/tokenizer.h"

namespace mmgrad::fuzz {
void check_loaded_tokenizer(const data::Tokenizer& tokenizer, const std::string& path);
}
