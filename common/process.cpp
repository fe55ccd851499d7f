#include "common/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

namespace fleet::process {

std::string render(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`;&|<>()*?[]#~") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

Result<Outcome> run(const Command& cmd, const LineSink& on_line) {
  if (cmd.argv.empty()) return fail(Errc::invalid_input, "empty command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(Errc::io, std::string("pipe: ") + std::strerror(errno));

  std::vector<char*> argv;
  for (const auto& a : cmd.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return fail(Errc::io, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    if (!cmd.stdout_file.empty()) {
      int out = ::open(cmd.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (out < 0) {
        std::string msg = "cannot write " + cmd.stdout_file.string() + ": " + std::strerror(errno) + "\n";
        (void)!::write(STDERR_FILENO, msg.data(), msg.size());
        ::_exit(127);
      }
      ::dup2(out, STDOUT_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!cmd.cwd.empty() && ::chdir(cmd.cwd.c_str()) != 0) {
      std::string msg = "cannot enter " + cmd.cwd.string() + ": " + std::strerror(errno) + "\n";
      (void)!::write(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(127);
    }
    for (const auto& [k, v] : cmd.env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execvp(argv[0], argv.data());
    std::string msg = std::string("cannot run ") + argv[0] + ": " + std::strerror(errno) + "\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(fds[1]);
  if (cmd.on_start) cmd.on_start(pid);

  using clock = std::chrono::steady_clock;
  const auto deadline = cmd.timeout ? std::optional(clock::now() + *cmd.timeout) : std::nullopt;
  Outcome outcome;
  std::string pending;
  char buf[8192];
  for (;;) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()).count();
      if (left <= 0) {
        outcome.timed_out = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left);
    }
    if (cmd.keep_going) {
      if (!cmd.keep_going()) {
        outcome.stopped = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      wait_ms = wait_ms < 0 ? 200 : std::min(wait_ms, 200);
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int pr = ::poll(&pfd, 1, wait_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) continue;  // deadline check above
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (on_line) on_line(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
  }
  if (!pending.empty() && on_line) on_line(pending);
  ::close(fds[0]);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    outcome.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome.signal = WTERMSIG(status);
  }
  return outcome;
}

Result<std::string> capture(const Command& cmd) {
  std::string out;
  auto outcome = FLEET_TRY(run(cmd, [&](std::string_view line) {
    out.append(line);
    out.push_back('\n');
  }));
  if (outcome.timed_out) return fail(Errc::timeout, render(cmd.argv) + " did not finish in time");
  if (outcome.exit_code != 0) {
    std::string tail = out.size() > 2000 ? out.substr(out.size() - 2000) : out;
    return fail(Errc::process_failed, render(cmd.argv) + " exited with " +
                                          (outcome.signal ? "signal " + std::to_string(outcome.signal)
                                                          : "status " + std::to_string(outcome.exit_code)) +
                                          (tail.empty() ? "" : ":\n" + tail));
  }
  return out;
}

}  // namespace fleet::process
