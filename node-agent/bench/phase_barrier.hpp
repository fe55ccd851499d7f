#pragma once
// The barrier between the probe's phases (a token of a 7B model has 129 of them, a 110M one
// 49). std::barrier sleeps in a futex and wakes through the kernel every phase: about 40 us
// a phase on this machine, half of a 110M token. ggml's threads meet by spinning on an
// atomic; this barrier does the same for a bounded time, then sleeps, so a thread that
// waits long (an oversubscribed board, a TCG guest) gives its CPU back.
//
// The last thread to arrive runs the completion (the serial steps between phases), then
// opens the next generation; the others see its writes (release on the generation, acquire
// on reading it).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fleet::agent::bench {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

template <class Completion>
class PhaseBarrier {
 public:
  // spin: how long a waiting thread polls before it sleeps; 0 sleeps at once (std::barrier).
  PhaseBarrier(int threads, Completion completion, std::chrono::microseconds spin = std::chrono::microseconds(200))
      : threads_(threads), completion_(std::move(completion)), spin_(spin) {}
  PhaseBarrier(const PhaseBarrier&) = delete;
  PhaseBarrier& operator=(const PhaseBarrier&) = delete;

  void arrive_and_wait() {
    const std::uint32_t gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
      // Nobody can arrive for the next generation before it opens: the reset is safe.
      arrived_.store(0, std::memory_order_relaxed);
      completion_();
      generation_.store(gen + 1, std::memory_order_seq_cst);
      if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
      return;
    }
    if (spin_.count() > 0) {
      const auto until = std::chrono::steady_clock::now() + spin_;
      for (unsigned i = 1;; ++i) {
        if (generation_.load(std::memory_order_acquire) != gen) return;
        cpu_relax();
        if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) break;
      }
    }
    // Announce the sleep before the last look at the generation (both seq_cst): either the
    // opener sees a sleeper and wakes it, or this thread sees the new generation.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    while (generation_.load(std::memory_order_seq_cst) == gen) generation_.wait(gen, std::memory_order_seq_cst);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    sleeps_.fetch_add(1, std::memory_order_relaxed);
  }

  // How often a waiting thread slept rather than caught the phase spinning.
  std::uint64_t sleeps() const { return sleeps_.load(std::memory_order_relaxed); }

 private:
  const int threads_;
  Completion completion_;
  const std::chrono::microseconds spin_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<std::uint32_t> generation_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<std::uint64_t> sleeps_{0};
};

// How the probe's threads meet between the graph's nodes.
//   gomp: libgomp's barrier (`#pragma omp barrier`), which is what ggml_barrier is in a
//         default llama.cpp build on Linux (GGML_OPENMP is on by default and GCC brings
//         libgomp): the figure llama.cpp would see, barrier cost included (about 1.4 us a
//         meeting of 2 threads here, 4.5 times PhaseBarrier's).
//   spin: PhaseBarrier above, ggml's own spinning barrier when built without OpenMP.
// Only where this agent was built with OpenMP does gomp exist (GCC always has it; the clang
// fuzz tree may not).
enum class Sync { gomp, spin };
inline constexpr bool k_have_gomp =
#if defined(_OPENMP)
    true;
#else
    false;
#endif
inline std::string_view sync_name(Sync s) { return s == Sync::gomp ? "gomp" : "spin"; }
inline std::optional<Sync> parse_sync(std::string_view s) {
  if (s == "gomp" && k_have_gomp) return Sync::gomp;
  if (s == "spin") return Sync::spin;
  return std::nullopt;
}
inline Sync best_sync() { return k_have_gomp ? Sync::gomp : Sync::spin; }

#if defined(_OPENMP)
// The same contract as PhaseBarrier, on libgomp's barrier: call arrive_and_wait from every
// thread of one `omp parallel` team of `threads`. The last thread to arrive runs the completion
// and then enters the barrier, which nobody leaves before it: so the completion's writes are
// seen (the barrier flushes) and the count's reset comes before anyone arrives again. It
// costs one atomic add a meeting beyond ggml's own barrier (ggml has no serial completion:
// a node's thread 0 does the serial part before the barrier, as the last arrival does here).
template <class Completion>
class GompBarrier {
 public:
  GompBarrier(int threads, Completion completion) : threads_(threads), completion_(std::move(completion)) {}
  GompBarrier(const GompBarrier&) = delete;
  GompBarrier& operator=(const GompBarrier&) = delete;

  void arrive_and_wait() {
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      completion_();
    }
#pragma omp barrier
  }

 private:
  const int threads_;
  Completion completion_;
  alignas(64) std::atomic<int> arrived_{0};
};
#endif

}  // namespace fleet::agent::bench
