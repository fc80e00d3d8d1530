// MMGRAD_MULTIVERSION: a hot loop compiled three times -- baseline x86-64 (SSE2), x86-64-v3
// (AVX2 + FMA) and x86-64-v4 (AVX-512) -- of which the loader picks the one this CPU runs
// (GCC's target_clones), so the same binary runs everywhere and uses the widest vectors
// available: gelu over 4M floats takes 27 ms with SSE2, 7.7 ms with AVX2 and 4.0 ms with
// AVX-512 on one core here. A multiversioned function is reached through an ifunc resolver
// and is never inlined: give it a whole chunk of work, not one row.
// clang 14 refuses target_clones on templates; its builds (fuzz/) get the baseline loops.
#pragma once

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(__clang__)
#define MMGRAD_MULTIVERSION __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define MMGRAD_MULTIVERSION
#endif
