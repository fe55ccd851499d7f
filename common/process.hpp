#pragma once
// Child processes without a shell: argv is passed as is, so no argument is ever parsed by
// /bin/sh. Output (stdout and stderr merged) is handed over line by line as it arrives.
#include <chrono>
#include <functional>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace fleet::process {

struct Command {
  std::vector<std::string> argv;
  std::filesystem::path cwd;                               // empty: inherit
  std::vector<std::pair<std::string, std::string>> env;    // added to the inherited environment
  std::optional<std::chrono::milliseconds> timeout;        // the whole process group is killed after it
  // When set, the child's stdout is written to this file and only stderr reaches the line
  // sink (a program that prints JSON on stdout and progress on stderr).
  std::filesystem::path stdout_file{};
  // Asked about every 200 ms while the process runs; false kills the process group (a
  // watchdog that depends on what the process printed, for instance).
  std::function<bool()> keep_going{};
  // Called once with the child's pid right after it starts.
  std::function<void(int pid)> on_start{};
};

struct Outcome {
  int exit_code = -1;     // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  bool stopped = false;   // killed because keep_going said false
};

using LineSink = std::function<void(std::string_view line)>;

// Runs the command to completion. Err only if it could not be started; a non-zero exit is
// an Outcome (callers decide what it means).
Result<Outcome> run(const Command& cmd, const LineSink& on_line);

// Runs and collects the output; Err (process_failed / timeout) unless it exits 0.
Result<std::string> capture(const Command& cmd);

// "make -C x" style rendering of argv for messages.
std::string render(const std::vector<std::string>& argv);

}  // namespace fleet::process
