// What a phase of the probe costs beyond its work: threads meeting at a barrier, std::barrier
// (futex sleep and wake every phase) against PhaseBarrier (spin, then sleep) and, where the
// compiler has OpenMP, `#pragma omp barrier` (libgomp: what ggml_barrier is in a default
// llama.cpp build on Linux), for 1..N threads, with no work and with a little (a few
// microseconds, like a 110M model's phase).
#include <barrier>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "node-agent/bench/memory.hpp"
#include "node-agent/bench/phase_barrier.hpp"

using namespace fleet::agent::bench;
using namespace std::chrono;

namespace {

volatile double g_sink = 0;

void work(int iterations) {
  double x = 1.0;
  for (int i = 0; i < iterations; ++i) x = x * 1.0000001 + 1e-9;
  g_sink = x;
}

template <class Barrier>
double us_per_phase(Team& team, Barrier& barrier, int phases, int work_iterations) {
  const auto t0 = steady_clock::now();
  team.run([&](int) {
    for (int p = 0; p < phases; ++p) {
      work(work_iterations);
      barrier.arrive_and_wait();
    }
  });
  return duration<double, std::micro>(steady_clock::now() - t0).count() / phases;
}

#if defined(_OPENMP)
double us_per_phase_omp(int threads, int phases, int work_iterations) {
  const auto t0 = steady_clock::now();
#pragma omp parallel num_threads(threads)
  for (int p = 0; p < phases; ++p) {
    work(work_iterations);
#pragma omp barrier
  }
  return duration<double, std::micro>(steady_clock::now() - t0).count() / phases;
}
#endif

struct Nothing {
  void operator()() noexcept {}
};

}  // namespace

int main() {
  const int cpus = int(std::thread::hardware_concurrency());
  constexpr int k_phases = 20000;
  std::printf("Cost of one phase, microseconds (%d phases; work: none, then ~5 us per thread)\n", k_phases);
  std::printf("  threads   work   std::barrier   PhaseBarrier   (slept)   omp barrier\n");
  for (int t = 1; t <= cpus; t *= 2) {
    std::vector<int> pin;
    for (int i = 0; i < t; ++i) pin.push_back(i);
    Team team(t, pin);
    for (int w : {0, 2000}) {
      std::barrier<Nothing> a(t);
      PhaseBarrier<Nothing> b(t, Nothing{});
      const double sa = us_per_phase(team, a, k_phases, w);
      const double sb = us_per_phase(team, b, k_phases, w);
#if defined(_OPENMP)
      const double so = us_per_phase_omp(t, k_phases, w);
#else
      const double so = -1;  // no OpenMP in this compiler
#endif
      std::printf("  %7d %6s %14.2f %14.2f   %7llu %13.2f\n", t, w ? "5 us" : "none", sa, sb,
                  static_cast<unsigned long long>(b.sleeps()), so);
    }
    if (t < cpus && t * 2 > cpus) t = cpus / 2;  // end on every CPU
  }
  return 0;
}
