// Fuzz builds only: compiles stb_image from Debian's header into fuzz_image with libFuzzer's
// coverage instrumentation and the sanitizers. libstb.so itself is neither, so without this
// the fuzzer would see only our wrapper's branches and none of the decoders'. The program's
// own stbi_* definitions take precedence over libstb.so's for libmmgrad's calls (ELF symbol
// interposition), so the instrumented decoder is the one that runs.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
