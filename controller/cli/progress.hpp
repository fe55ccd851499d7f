#pragma once
// Progress of long work on a terminal (one line redrawn in place) or in a log (a line per
// step, and a compile count every 30 s), chosen by whether the stream is a TTY.
#include <chrono>
#include <iosfwd>

#include "controller/kernel/build.hpp"

namespace fleet::controller::cli {

class ConsoleProgress : public kernel::Progress {
 public:
  ConsoleProgress(std::ostream& out, bool tty);
  ~ConsoleProgress() override;
  void step(std::string_view what) override;
  void compile(std::string_view what, int done, int expected) override;
  void note(std::string_view what) override;

 private:
  void end_line();
  std::string elapsed() const;
  std::ostream& out_;
  bool tty_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace fleet::controller::cli
