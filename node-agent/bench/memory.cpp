#include "node-agent/bench/memory.hpp"

#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <ranges>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "common/fs.hpp"
#include "common/text.hpp"

using fleet::text::trim;
using fleet::text::split_words;

namespace fleet::agent::bench {

std::string_view huge_name(Huge h) {
  switch (h) {
    case Huge::on: return "madvise";
    case Huge::off: return "nohugepage";
    case Huge::unadvised: return "none";
  }
  return "?";
}

Result<Region> Region::map(std::size_t bytes, std::size_t align, Huge huge) {
  if (bytes == 0) return fail(Errc::invalid_input, "a memory region of 0 bytes");
  align = std::max<std::size_t>(align, 4096);
  bytes = (bytes + align - 1) / align * align;
  void* p = ::mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return fail(Errc::io, "cannot map " + std::to_string(bytes >> 20) + " MiB: " + std::strerror(errno));
  }
  auto base = reinterpret_cast<std::uintptr_t>(p);
  auto start = (base + align - 1) / align * align;
  if (start > base) ::munmap(p, start - base);
  if (auto tail = base + bytes + align - (start + bytes)) ::munmap(reinterpret_cast<void*>(start + bytes), tail);
  // Advice only: a kernel without THP refuses it, and then there are no huge pages to compare.
  if (huge != Huge::unadvised) {
    ::madvise(reinterpret_cast<void*>(start), bytes, huge == Huge::on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  }
  Region r;
  r.data_ = reinterpret_cast<std::byte*>(start);
  r.size_ = bytes;
  return r;
}

Region::Region(Region&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
Region& Region::operator=(Region&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(size_, o.size_);
  return *this;
}
Region::~Region() {
  if (data_) ::munmap(data_, size_);
}

std::size_t smaps_anon_huge_kb(std::string_view smaps, std::uintptr_t start) {
  bool inside = false;
  for (auto line : std::views::split(smaps, '\n')) {
    std::string_view l(line.begin(), line.end());
    auto dash = l.find('-');
    // Mapping header lines start with "start-end perms ..."; field lines with "Name:".
    if (dash != std::string_view::npos && l.find(':') > dash && dash > 0) {
      std::uintptr_t a = 0;
      auto [p, ec] = std::from_chars(l.data(), l.data() + dash, a, 16);
      inside = ec == std::errc{} && p == l.data() + dash && a == start;
      continue;
    }
    if (inside && l.starts_with("AnonHugePages:")) {
      auto words = split_words(l.substr(14));
      if (words.empty()) return 0;
      std::size_t kb = 0;
      std::from_chars(words[0].data(), words[0].data() + words[0].size(), kb);
      return kb;
    }
  }
  return 0;
}

std::size_t Region::huge_kb() const {
  auto smaps = fs::read_file("/proc/self/smaps");
  return smaps ? smaps_anon_huge_kb(*smaps, reinterpret_cast<std::uintptr_t>(data_)) : 0;
}

struct Team::Shared {
  explicit Shared(int n) : start(n + 1), done(n + 1) {}
  std::barrier<> start;
  std::barrier<> done;
  const std::function<void(int)>* job = nullptr;
  bool stop = false;
};

Team::Team(int threads, const std::vector<int>& cpus) : shared_(std::make_unique<Shared>(threads)) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, cpu = cpus.empty() ? -1 : cpus[std::size_t(i) % cpus.size()]] {
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
      }
      for (;;) {
        shared_->start.arrive_and_wait();
        if (shared_->stop) return;
        (*shared_->job)(i);
        shared_->done.arrive_and_wait();
      }
    });
  }
}

Team::~Team() {
  shared_->stop = true;
  shared_->start.arrive_and_wait();
  threads_.clear();  // joins
}

void Team::run(const std::function<void(int)>& job) {
  shared_->job = &job;
  shared_->start.arrive_and_wait();
  shared_->done.arrive_and_wait();
}

std::string_view kernel_name(Kernel k) {
  switch (k) {
    case Kernel::read: return "read";
    case Kernel::copy: return "copy";
    case Kernel::triad: return "triad";
  }
  return "?";
}

double BandwidthReport::gbps(Kernel k, int threads, Huge h) const {
  for (const auto& r : results) {
    if (r.kernel == k && r.threads == threads && r.huge == h) return r.gbps;
  }
  return 0;
}

std::size_t default_array_bytes(const Topology& topo, std::string* note, std::size_t floor) {
  std::size_t want = std::max(floor, 4 * topo.llc_bytes);
  // Three arrays (triad) must fit in half of what is available.
  if (topo.mem_available_bytes > 0) {
    std::size_t cap = topo.mem_available_bytes / 6;
    if (want > cap) {
      if (note) {
        *note = "arrays capped at " + std::to_string(cap >> 20) + " MiB by available memory (wanted " +
                std::to_string(want >> 20) + " MiB, 4x the last-level cache)";
      }
      want = cap;
    }
  }
  return std::max<std::size_t>(want, 1u << 20) / 64 * 64;
}

namespace {

// The kernels over one thread's slice. Word-sized elements; the compiler vectorises them.
std::uint64_t kernel_read(const std::uint64_t* a, std::size_t n) {
  std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i];
    s1 += a[i + 1];
    s2 += a[i + 2];
    s3 += a[i + 3];
  }
  for (; i < n; ++i) s0 += a[i];
  return s0 + s1 + s2 + s3;
}
void kernel_copy(double* __restrict a, const double* __restrict b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i];
}
void kernel_triad(double* __restrict a, const double* __restrict b, const double* __restrict c, double s,
                  std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace

Result<BandwidthReport> measure_bandwidth(const Topology& topo, const BandwidthOptions& options) {
  BandwidthReport report;
  std::string note;
  report.array_bytes =
      options.array_bytes ? options.array_bytes / 64 * 64 : default_array_bytes(topo, &note, options.floor_bytes);
  report.note = note;
  const std::size_t n = report.array_bytes / sizeof(double);
  std::vector<int> counts = options.thread_counts;
  for (int& c : counts) {
    if (c <= 0) c = int(topo.cpus.size());
  }
  if (counts.empty()) {
    counts = {1};
    if (topo.cpus.size() > 1) counts.push_back(int(topo.cpus.size()));
  }
  const auto cpus = spread_over_nodes(topo.node_cpus, topo.cpus);
  const int max_threads = *std::max_element(counts.begin(), counts.end());
  Team team(max_threads, cpus);
  volatile std::uint64_t sink = 0;
  for (Huge huge : options.huge) {
    // Only the arrays the kernels use: read needs one, copy two, triad three.
    auto uses = [&](Kernel k) { return std::find(options.kernels.begin(), options.kernels.end(), k) != options.kernels.end(); };
    const bool need_a = uses(Kernel::copy) || uses(Kernel::triad), need_c = uses(Kernel::triad);
    Region a, c;
    if (need_a) a = FLEET_TRY(Region::map(report.array_bytes, topo.pmd_bytes, huge));
    auto b = FLEET_TRY(Region::map(report.array_bytes, topo.pmd_bytes, huge));
    if (need_c) c = FLEET_TRY(Region::map(report.array_bytes, topo.pmd_bytes, huge));
    auto* pa = reinterpret_cast<double*>(a.data());
    auto* pb = reinterpret_cast<double*>(b.data());
    auto* pc = reinterpret_cast<double*>(c.data());
    // First touch by the threads that will read each slice: pages land on their node.
    team.run([&](int i) {
      auto [lo, hi] = slice(n, i, max_threads);
      for (std::size_t k = lo; k < hi; ++k) {
        if (pa) pa[k] = 1.0;
        pb[k] = 2.0;
        if (pc) pc[k] = double(k & 7);
      }
    });
    const double huge_fraction = double(b.huge_kb()) * 1024.0 / double(b.size());
    for (int threads : counts) {
      for (Kernel k : options.kernels) {
        double best = 0;
        for (int rep = 0; rep < std::max(1, options.repetitions); ++rep) {
          std::uint64_t sums[256] = {};
          auto t0 = std::chrono::steady_clock::now();
          team.run([&](int i) {
            if (i >= threads) return;
            auto [lo, hi] = slice(n, i, threads);
            switch (k) {
              case Kernel::read:
                sums[i % 256] = kernel_read(reinterpret_cast<const std::uint64_t*>(pb) + lo, hi - lo);
                break;
              case Kernel::copy: kernel_copy(pa + lo, pb + lo, hi - lo); break;
              case Kernel::triad: kernel_triad(pa + lo, pb + lo, pc + lo, 3.0, hi - lo); break;
            }
          });
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          for (auto v : sums) sink = sink + v;
          const double bytes = double(n * sizeof(double)) * (k == Kernel::read ? 1 : k == Kernel::copy ? 2 : 3);
          if (s > 0) best = std::max(best, bytes / s / 1e9);
        }
        report.results.push_back({k, threads, huge, best, report.array_bytes, huge_fraction});
      }
    }
  }
  (void)sink;
  return report;
}

}  // namespace fleet::agent::bench
