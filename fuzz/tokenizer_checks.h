// Checks shared by the tokenizer-file targets: whatever loaded must encode any text into ids
// of its vocabulary (or refuse with an error naming its file: a vocabulary without a byte's
// symbol and without an unknown token cannot encode that byte), decode them to valid UTF-8,
// and build batches with the special tokens.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/tokenizer.h"

namespace mmgrad::fuzz {
void check_loaded_tokenizer(const data::Tokenizer& tokenizer, const std::string& path);
// The input as a pretrained tokenizer file named `file_name` (its extension picks the format,
// as load_pretrained_tokenizer does), loaded and, when accepted, checked as above.
void fuzz_pretrained_tokenizer(const uint8_t* data, size_t size, const std::string& file_name);
}
