// "Did you mean ...?" for names typed by people: the candidate with the smallest edit
// distance, so "--set visoin_width=64" points at vision_width.
#pragma once
#include <string>
#include <vector>

namespace mmgrad {

// Levenshtein distance (insertions, deletions, substitutions, each cost 1).
size_t edit_distance(const std::string& a, const std::string& b);

// The closest candidate, or "" when none is within half the word's length (a suggestion
// that shares nothing with the typed name helps nobody).
std::string nearest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace mmgrad
