#pragma once
// Secrets of the controller: random tokens, their comparison, and the files that hold them.
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::tls {

// 128 random bits (OpenSSL's RAND_bytes) as 32 lowercase hex digits. A failure of the
// random source is an error, never a weak token.
Result<std::string> random_token();

// Equal in time that does not depend on where `a` and `b` differ (CRYPTO_memcmp), so a
// caller cannot find a token byte by byte from response times. Lengths are compared
// first: they are not secret (every token is 32 hex digits).
bool same_secret(std::string_view a, std::string_view b);

// Creates `path` with mode 0600 from its first byte (open O_CREAT|O_EXCL|O_NOFOLLOW),
// writes and fsyncs it. An existing file is not replaced (Errc::invalid_input).
Result<void> write_new_private_file(const std::filesystem::path& path, std::string_view data);

// A file that must be ours alone: a regular file (not a symlink) that group and others
// cannot read or write. Errc::invalid_input naming the file and its mode otherwise.
Result<void> check_private_file(const std::filesystem::path& path);

// The token in `file`, made there (0600, by link(2) of a complete file: a reader never
// sees half of it, and two processes making it at once agree on one) if there is none.
// `created` is set when this call made it.
Result<std::string> read_or_create_token(const std::filesystem::path& file, bool* created = nullptr);

// The StatusService's token for a state database: beside it, `status.token`.
std::filesystem::path status_token_file(const std::filesystem::path& state_db);

}  // namespace fleet::tls
