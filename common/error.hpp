#pragma once
// One error type for the whole project: a code a program can branch on and a message a
// person can act on (Mender src/common/error.hpp, ccache util/expected.hpp).
#include <expected>
#include <string>
#include <utility>

namespace fleet {

enum class Errc {
  invalid_input,   // a file, flag or field a user gave is wrong
  not_found,       // a file or symbol that should exist does not
  io,              // the operating system refused a read or write
  parse,           // text that does not have the expected shape
  process_failed,  // a child process exited non-zero or died
  timeout,         // something took longer than its bound (never the same as a refusal)
  mismatch,        // a checked value differs from the expected one
  unsupported,     // valid input this build or machine cannot act on
  unreachable,     // a board did not answer on the network
  auth_refused,    // a board refused our credentials
  host_key,        // a board's host key is unknown (strict checking) or has changed
};

const char* errc_name(Errc code);

struct Error {
  Errc code;
  std::string message;

  // Prefixes context: Error{...}.wrap("reading profile x") -> "reading profile x: <message>".
  Error wrap(const std::string& context) const { return {code, context + ": " + message}; }
};

// std::expected that cannot be ignored: a call whose Result is dropped does not compile
// (-Werror), so a failed save or write is handled or said, never lost. A std::expected<T,
// Error> converts to it; what and_then/transform return is a plain std::expected (their
// callbacks must return std::expected too), which FLEET_TRY and with_context also take.
template <class T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result() = default;
  Result(const std::expected<T, Error>& e) : std::expected<T, Error>(e) {}
  Result(std::expected<T, Error>&& e) : std::expected<T, Error>(std::move(e)) {}
};

inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// Adds context to an error, keeps a value as it is:
//   FLEET_TRY(with_context(fs::read_file(p), "reading the agent"))
template <class T>
Result<T> with_context(Result<T> r, const std::string& context) {
  if (!r) return std::unexpected(r.error().wrap(context));
  return r;
}
// What and_then/transform return.
template <class T>
Result<T> with_context(std::expected<T, Error>&& r, const std::string& context) {
  return with_context(Result<T>(std::move(r)), context);
}

namespace detail {
template <class T>
T unwrap(std::expected<T, Error>&& r) {
  return std::move(*r);
}
inline void unwrap(std::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace fleet

// FLEET_TRY(expr): evaluates a Result; returns its error from the enclosing function, or
// yields its value. GCC/Clang statement expression, as in ccache's TRY.
#define FLEET_TRY(expr)                                                  \
  ({                                                                     \
    auto fleet_try_result_ = (expr);                                     \
    if (!fleet_try_result_) return std::unexpected(std::move(fleet_try_result_.error())); \
    ::fleet::detail::unwrap(std::move(fleet_try_result_));               \
  })
