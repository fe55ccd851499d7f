#pragma once
// The reason OpenSSL gives for its last failure, for an error message; clears its queue so
// the next failure is not blamed on this one. Used by signing and tls.
#include <openssl/err.h>

#include <array>
#include <string>

namespace fleet {

inline std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail";
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

}  // namespace fleet
