#pragma once
// What the agent needs from the running board besides its files: which kernel runs, the
// contract check, a reboot, the clock. Real on a board, fake in tests.
#include <cstdint>
#include <filesystem>
#include <string>


#include "common/contract.hpp"
#include "common/error.hpp"
#include "node-agent/bench/health.hpp"
#include "node-agent/lifecycle/state.hpp"
#include "node-agent/verify/verify.hpp"
#include "proto/fleet.pb.h"

namespace fleet::agent {

enum class RebootMode { normal, tryboot };

// Model throughput measured on the board (fleet-agent bench).
struct Throughput {
  double tokens_per_s = 0;  // what a minimum is compared with: llama-bench's tg rate if it ran, else the probe's
  std::string measured_by;  // "probe 110m (synthetic weights)" or "llama-bench tg16 of MODEL"
  fleet::v1::Throughput detail;  // what the report carries (throughput_message)
  bench::Health health;          // the board while it was measured
};

class System {
 public:
  virtual ~System() = default;
  virtual std::string running_release() = 0;
  virtual Report verify(const Contract& contract) = 0;
  // The bootloader as the device tree describes it; nullopt when there is no such node
  // (not a Pi 5 firmware), an error when the node is unreadable.
  virtual Result<std::optional<bootloader::Info>> bootloader() = 0;
  virtual Result<Throughput> measure(const BenchSpec& spec) = 0;
  // How measure(spec) would measure now, in words ("" when it cannot tell before measuring):
  // a kept figure serves as a baseline only if it was taken the same way, so an agent whose
  // probe changed measures the committed kernel again.
  virtual std::string measure_method(const BenchSpec& spec) {
    (void)spec;
    return {};
  }
  // On a board this does not return; it returns an error if the kernel refused. Fakes
  // record the request and return so a test can "power on" the board again.
  virtual Result<void> reboot(RebootMode mode) = 0;
  virtual std::int64_t now_ms() = 0;
};

// The running board: /proc and /sys under `root`, reboot(2) with "0 tryboot". On a light board
// (common/light_board.hpp: its marker under `root`) the kernel's view is the board's files
// and a reboot is a request to fleet-sim.
class RealSystem : public System {
 public:
  explicit RealSystem(std::filesystem::path root);
  std::string running_release() override;
  Report verify(const Contract& contract) override;
  Result<std::optional<bootloader::Info>> bootloader() override;
  Result<Throughput> measure(const BenchSpec& spec) override;
  std::string measure_method(const BenchSpec& spec) override;
  Result<void> reboot(RebootMode mode) override;
  std::int64_t now_ms() override;

 private:
  std::filesystem::path root_;
  bool light_ = false;
};

}  // namespace fleet::agent
