#pragma once
// Memory for the benchmarks and the threads that stream it.
//  - Region: anonymous memory aligned to the PMD huge page size, with MADV_HUGEPAGE,
//    MADV_NOHUGEPAGE or no advice, so "with" and "without" THP differ only in that advice.
//  - Team: one thread per CPU of a list, pinned, each running the same job.
//  - measure_bandwidth: read, copy and triad (STREAM's kernels), best of N repetitions.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "node-agent/bench/topology.hpp"

namespace fleet::agent::bench {

// What a region asks of THP: MADV_HUGEPAGE, MADV_NOHUGEPAGE, or nothing. llama.cpp asks for
// nothing: its weights (repacked or read with --no-mmap) come from posix_memalign
// (ggml_aligned_malloc) and are never madvised, so the kernel's THP mode decides, base pages
// under `madvise` and huge pages under `always` (an mmapped model file stays in base pages on
// 6.12). glibc.malloc.hugetlb=1 in GLIBC_TUNABLES makes glibc madvise its large blocks: that
// llama.cpp gets what `on` gives.
enum class Huge { on, off, unadvised };
std::string_view huge_name(Huge h);  // "madvise", "nohugepage", "none"

class Region {
 public:
  static Result<Region> map(std::size_t bytes, std::size_t align, Huge huge);
  Region() = default;
  Region(Region&& o) noexcept;
  Region& operator=(Region&& o) noexcept;
  ~Region();
  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  // kB of this region backed by transparent huge pages (AnonHugePages in /proc/self/smaps).
  std::size_t huge_kb() const;

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// /proc/self/smaps: AnonHugePages (kB) of the mapping that starts at `start`. Pure.
std::size_t smaps_anon_huge_kb(std::string_view smaps, std::uintptr_t start);

class Team {
 public:
  // Thread i runs on cpus[i] (pinned; a failed pin is not an error); cpus empty: unpinned.
  Team(int threads, const std::vector<int>& cpus);
  ~Team();
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;
  int size() const { return int(threads_.size()); }
  // Runs job(i) on every thread i and returns when all are done.
  void run(const std::function<void(int)>& job);

 private:
  struct Shared;
  std::unique_ptr<Shared> shared_;
  std::vector<std::jthread> threads_;
};

// Thread i of n gets [begin, end) of `count` items, in contiguous slices.
inline std::pair<std::size_t, std::size_t> slice(std::size_t count, int i, int n) {
  return {count * std::size_t(i) / std::size_t(n), count * std::size_t(i + 1) / std::size_t(n)};
}

enum class Kernel { read, copy, triad };
std::string_view kernel_name(Kernel k);

struct BandwidthOptions {
  std::size_t array_bytes = 0;  // per array; 0: max(floor_bytes, 4 x LLC), capped by memory
  std::size_t floor_bytes = 256u << 20;  // far beyond any Pi's 2 MiB L3
  int repetitions = 5;
  std::vector<int> thread_counts;  // empty: {1, all CPUs}; 0 in the list: all CPUs
  std::vector<Huge> huge = {Huge::on, Huge::off};
  std::vector<Kernel> kernels = {Kernel::read, Kernel::copy, Kernel::triad};
};

struct BandwidthResult {
  Kernel kernel;
  int threads;
  Huge huge;
  double gbps;               // best repetition; bytes moved as STREAM counts them
  std::size_t array_bytes;
  double huge_fraction;      // share of the arrays THP actually backed
};

struct BandwidthReport {
  std::vector<BandwidthResult> results;
  std::size_t array_bytes = 0;
  std::string note;  // e.g. arrays capped below 4 x the cache by available memory
  // The best figure for (kernel, threads, huge), 0 if not measured.
  double gbps(Kernel k, int threads, Huge h) const;
};

// Default array size for `topo` (see BandwidthOptions), and why it is smaller if it is.
std::size_t default_array_bytes(const Topology& topo, std::string* note, std::size_t floor = 256u << 20);

Result<BandwidthReport> measure_bandwidth(const Topology& topo, const BandwidthOptions& options);

}  // namespace fleet::agent::bench
