#pragma once
// Small text helpers shared by the parsers (pure).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fleet::text {

// Without leading and trailing white space.
std::string_view trim(std::string_view s);

// Words separated by spaces, tabs or line ends (a kernel command line, a config value).
std::vector<std::string> split_words(std::string_view s);

// "" if `word` can be one word of a kernel command line or of a command run on a board
// (from a bundle or an inventory): printable ASCII, no space, no control character, at most
// 1024 characters; else why not. A newline in such a word once made cmdline.txt two lines.
std::string command_word_problem(std::string_view word);

// A value from outside for an error message: in single quotes, control characters as \xNN,
// cut at 80 characters, so the message stays one line whatever the value held.
std::string quoted(std::string_view s);

// A size for people, in decimal units, at most three figures: "0 B", "999 B", "1.0 kB",
// "71 MB", "4.2 GB". The one formatter of sizes (the dashboard, model push's progress).
std::string size_text(std::uint64_t bytes);

}  // namespace fleet::text
