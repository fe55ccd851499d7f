#include "common/text.hpp"

#include <cctype>
#include <cstdio>
#include <iterator>

namespace fleet::text {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::string word;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

std::string command_word_problem(std::string_view word) {
  if (word.empty()) return "is empty";
  if (word.size() > 1024) return "is longer than 1024 characters";
  for (unsigned char c : word) {
    if (c == ' ') return "holds a space (give each word on its own)";
    if (c < 0x20 || c == 0x7f) return "holds a control character (a newline would split the command line)";
    if (c >= 0x80) return "holds a byte outside printable ASCII";
  }
  return "";
}


std::string quoted(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 80)) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return "'" + out + (s.size() > 80 ? "...'" : "'");
}

std::string size_text(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = double(bytes);
  std::size_t u = 0;
  while (v >= 1000 && u + 1 < std::size(k_units)) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : v < 10 ? "%.1f %s" : "%.0f %s", v, k_units[u]);
  return buf;
}

}  // namespace fleet::text
