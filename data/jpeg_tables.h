// A check run on JPEG files before stb_image sees them. stb_image 2.27 (Debian's libstb)
// trusts the code counts of a Huffman table (DHT segment): counts summing past 256 make it
// write past its 257-entry arrays (found by fuzz/fuzz_image; fixed upstream in 2.28 with the
// same limit). It also decodes a scan whose components name a table no DHT segment defined,
// reading uninitialised tables out of bounds (found by fuzz/fuzz_image, 2026-11-29). Files
// that would reach either are refused here instead.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mmgrad::data {

// Empty when every Huffman table stb_image could read declares at most 256 codes and every
// scan uses only tables defined before it; otherwise what is wrong ("a Huffman table
// declares 300 codes at byte 20, at most 256", "the scan at byte 600 uses DC Huffman table 3,
// which no table before it defines": stb_image would decode with uninitialised memory).
// Before the first scan the segments are walked as stb_image walks them (so bytes inside
// APPn/COM payloads, such as ICC profiles, are not mistaken for tables); after it, where
// stb_image finds markers depends on the decoded data, so every FF C4 and FF DA there is
// checked.
std::string jpeg_huffman_table_problem(const uint8_t* data, size_t size);

}  // namespace mmgrad::data
