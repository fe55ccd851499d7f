#pragma once
// What every harness shares: the input as text, and a broken property turned into a crash
// that libFuzzer saves (abort), with what broke on stderr. Harnesses check properties
// beyond "no crash": errors name their source, accepted values survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fleet::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

[[noreturn]] inline void broken(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "fuzz: property broken: %.*s\n%.*s\n", int(what.size()), what.data(), int(detail.size()),
               detail.data());
  std::abort();
}

// The conventions' rule for bad input: the error names the file (or output) it came from.
inline void names_source(std::string_view message, std::string_view source) {
  if (message.find(source) == std::string_view::npos) broken("the error does not name its source", message);
}

}  // namespace fleet::fuzz
