#pragma once
// Small text helpers shared by the parsers (pure).
#include <string>
#include <string_view>
#include <vector>

namespace fleet::text {

// Without leading and trailing white space.
std::string_view trim(std::string_view s);

// Words separated by spaces, tabs or line ends (a kernel command line, a config value).
std::vector<std::string> split_words(std::string_view s);

}  // namespace fleet::text
