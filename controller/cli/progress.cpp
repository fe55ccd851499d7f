#include "controller/cli/progress.hpp"

#include <ostream>

namespace fleet::controller::cli {

ConsoleProgress::ConsoleProgress(std::ostream& out, bool tty)
    : out_(out), tty_(tty), start_(std::chrono::steady_clock::now()), last_(start_) {}

ConsoleProgress::~ConsoleProgress() { end_line(); }

std::string ConsoleProgress::elapsed() const {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start_).count();
  return std::to_string(s / 60) + "m" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60) + "s";
}

void ConsoleProgress::end_line() {
  if (line_open_) out_ << "\n" << std::flush;
  line_open_ = false;
}

void ConsoleProgress::step(std::string_view what) {
  end_line();
  out_ << "[" << elapsed() << "] " << what << "\n" << std::flush;
}

void ConsoleProgress::note(std::string_view what) {
  end_line();
  out_ << "note: " << what << "\n" << std::flush;
}

void ConsoleProgress::compile(std::string_view what, int done, int expected) {
  auto now = std::chrono::steady_clock::now();
  std::string count = std::to_string(done) + (expected > 0 ? "/" + std::to_string(expected) : "");
  if (expected > 0) count += " (" + std::to_string(std::min(99, done * 100 / expected)) + "%)";
  if (tty_) {
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::string line = "[" + elapsed() + "] " + count + "  " + std::string(what);
    if (line.size() > 100) line.resize(100);
    out_ << "\r\033[K" << line << std::flush;
    line_open_ = true;
  } else if (now - last_ >= std::chrono::seconds(30)) {
    last_ = now;
    out_ << "[" << elapsed() << "] compiled " << count << " steps, now " << what << "\n" << std::flush;
  }
}

}  // namespace fleet::controller::cli
