#include "common/error.hpp"

namespace fleet {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::invalid_input: return "invalid input";
    case Errc::not_found: return "not found";
    case Errc::io: return "I/O error";
    case Errc::parse: return "parse error";
    case Errc::process_failed: return "command failed";
    case Errc::timeout: return "timeout";
    case Errc::mismatch: return "mismatch";
    case Errc::unsupported: return "unsupported";
    case Errc::unreachable: return "unreachable";
    case Errc::auth_refused: return "authentication refused";
    case Errc::host_key: return "host key";
  }
  return "error";
}

}  // namespace fleet
