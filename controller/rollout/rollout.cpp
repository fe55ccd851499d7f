#include "controller/rollout/rollout.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>
#include <tuple>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "controller/inventory/inventory.hpp"
#include "controller/reports/report_server.hpp"
#include "controller/rollout/bench_vars.hpp"
#include "controller/rollout/ssh_board.hpp"
#include "controller/store/store.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"

namespace fleet::rollout {
namespace stdfs = std::filesystem;

namespace {

// For rollout ids, which only need to differ; tokens come from tls::random_token.
std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::read(fd, raw.data(), bytes);
    ::close(fd);
  }
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(k[c >> 4]);
    out.push_back(k[c & 15]);
  }
  return out;
}

// The bundle as one tar, made once per build key (sorted, fixed times: the same bytes
// every time, so an interrupted upload resumes into the same file).
Result<stdfs::path> bundle_tar(const stdfs::path& bundle, const std::string& key, const stdfs::path& work) {
  // The key names a file in the cache: checked again here, not only by the manifest's parser.
  if (!bundle::is_build_key(key)) return fail(Errc::invalid_input, "bundle build key '" + key + "' is not 64 hex digits");
  // A signature added later makes another tar: the name carries the signature's hash too.
  std::string name = key;
  if (auto sig = fs::read_file(bundle / bundle::k_signature)) name += "-" + hash::sha256_hex(*sig).substr(0, 12);
  stdfs::path tar = work / (name + ".tar");
  if (stdfs::exists(tar)) return tar;
  std::error_code ec;
  stdfs::create_directories(work, ec);
  stdfs::path tmp = tar.string() + ".tmp";
  FLEET_TRY(process::capture({{"tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
                               "--exclude=./" + std::string(bundle::k_build_log), "-cf", tmp.string(), "-C",
                               bundle.string(), "."},
                              {}, {}, std::chrono::minutes(10)}));
  stdfs::rename(tmp, tar, ec);
  if (ec) return fail(Errc::io, "cannot rename " + tmp.string() + ": " + ec.message());
  return tar;
}

// Where and how to reach an inventory host over SSH.
Result<ssh::Endpoint> endpoint_of(const inventory::Inventory& inv, const std::string& name,
                                  const std::filesystem::path& inventory_file, const std::filesystem::path& known_hosts,
                                  ssh::HostKeys host_keys) {
  const auto* h = inv.find(name);
  if (!h) return fail(Errc::invalid_input, "board " + name + " is no longer in " + inventory_file.string());
  ssh::Endpoint e;
  e.name = h->name;
  e.host = h->address;
  e.port = h->port;
  e.user = h->user;
  e.key = h->key;
  e.known_hosts = known_hosts;
  e.host_keys = host_keys;
  return e;
}

// What the terminal shows of a board: its outcome when done, else its step.
const char* shown(const store::BoardRow& b) {
  return b.step == Step::done ? vocab::name(b.outcome) : vocab::name(b.step);
}

std::string board_line(const store::BoardRow& b) {
  std::ostringstream o;
  o << "[wave " << b.wave + 1 << "] " << std::left << std::setw(12) << b.board << " " << shown(b);
  if (b.step == Step::done && !b.message.empty()) o << ": " << b.message;
  return o.str();
}

// The live view on a terminal: one line per board and the counts, redrawn in place at most
// five times a second (a big fleet changes rows faster than a terminal draws them).
class LiveView {
 public:
  LiveView(std::ostream& out, const std::vector<RunnerBoard>& boards) : out_(out) {
    for (const auto& b : boards) {
      index_[b.row.board] = rows_.size();
      rows_.push_back(b.row);
    }
  }
  ~LiveView() { draw(); }
  void update(const store::BoardRow& row) {
    if (auto it = index_.find(row.board); it != index_.end()) rows_[it->second] = row;
    auto now = std::chrono::steady_clock::now();
    if (now - drawn_at_ < std::chrono::milliseconds(200)) return;
    drawn_at_ = now;
    draw();
  }

 private:
  void draw() {
    if (drawn_ > 0) out_ << "\033[" << drawn_ << "F\033[J";  // back to the top of the last drawing
    std::map<std::string, int> counts;
    constexpr std::size_t k_lines = 40;  // the rest are in the counts (and `fleetctl status`)
    std::size_t lines = 0;
    for (const auto& r : rows_) {
      if (lines < k_lines) out_ << board_line(r).substr(0, 110) << "\n";
      ++lines;
      ++counts[r.step == Step::done ? vocab::name(r.outcome)
                                    : r.step == Step::pending ? "waiting" : r.step == Step::staged ? "staged" : "working"];
    }
    if (lines > k_lines) out_ << "... and " << lines - k_lines << " more boards\n";
    std::string summary;
    for (const auto& [k, v] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    out_ << summary << "\n" << std::flush;
    drawn_ = static_cast<int>(std::min(lines, k_lines)) + (lines > k_lines ? 1 : 0) + 1;
  }
  std::ostream& out_;
  std::vector<store::BoardRow> rows_;
  std::map<std::string, std::size_t> index_;
  std::chrono::steady_clock::time_point drawn_at_{};
  int drawn_ = 0;
};

}  // namespace

Result<std::vector<ReportDue>> await_reports(store::Store& store, const std::string& rollout_id,
                                             const std::vector<ReportDue>& due, std::chrono::milliseconds limit,
                                             std::ostream& out, std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const std::string within = limit.count() % 1000 == 0 ? std::to_string(limit.count() / 1000) + " s"
                                                       : std::to_string(limit.count()) + " ms";
  std::vector<ReportDue> missing;
  for (bool first = true;; first = false) {
    missing.clear();
    for (const auto& d : due) {
      if (FLEET_TRY(store.last_report_sequence(d.board, rollout_id)) < d.sequence) missing.push_back(d);
    }
    if (missing.empty()) return missing;
    if (first) {
      std::string names;
      for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m.board;
      out << "reports: waiting up to " << within << " for what " << missing.size() << (missing.size() == 1 ? " board" : " boards")
          << " reported of the verdict (" << names << ")\n" << std::flush;
    }
    if (std::chrono::steady_clock::now() + poll > deadline) break;
    std::this_thread::sleep_for(poll);
  }
  for (const auto& m : missing) {
    out << "reports: " << m.board << ": its report " << m.sequence << " (the verdict, with its checks and tokens/s) "
        << "did not arrive within " << within << "; the verdict stands (seen over SSH), and `fleetctl status` shows the last report that did arrive\n";
  }
  return missing;
}

Result<std::pair<std::string, int>> board_group(const inventory::Host& h) {
  std::string group;
  int max_down = 1;
  if (auto it = h.vars.find("fleet_group"); it != h.vars.end()) group = it->second;
  if (auto it = h.vars.find("fleet_group_max_down"); it != h.vars.end()) {
    const std::string& v = it->second;
    int n = 0;
    bool ok = !v.empty() && v.size() <= 6 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (ok) n = std::stoi(v);
    if (!ok || n < 1) {
      return fail(Errc::invalid_input, h.where + ": host " + h.name + ": fleet_group_max_down must be a whole number of "
                                       "boards, at least 1, got '" + v + "'");
    }
    if (group.empty()) {
      return fail(Errc::invalid_input, h.where + ": host " + h.name + ": fleet_group_max_down without fleet_group");
    }
    max_down = n;
  }
  return std::pair{group, max_down};
}

std::string signature_refusal(const std::vector<std::string>& board_keys, const std::string& bundle_signer,
                              const std::string& added_key) {
  std::vector<std::string> keys = board_keys;
  if (!added_key.empty() && std::find(keys.begin(), keys.end(), added_key) == keys.end()) keys.push_back(added_key);
  if (keys.empty()) return "";
  if (!bundle_signer.empty() && std::find(keys.begin(), keys.end(), bundle_signer) != keys.end()) return "";
  std::string ids;
  for (const auto& k : keys) ids += (ids.empty() ? "" : ", ") + k;
  return "the board would refuse it: it trusts key " + ids + " and the bundle is " +
         (bundle_signer.empty() ? std::string("not signed") : "signed by key " + bundle_signer);
}

Result<RolloutSummary> run_rollout(const RolloutOptions& o, std::ostream& out) {
  auto manifest = FLEET_TRY(bundle::verify(o.bundle));
  auto inv = FLEET_TRY(inventory::load_inventory(o.inventory));
  auto store = FLEET_TRY(store::Store::open(o.state_db));
  std::optional<store::RolloutRow> resumed;
  if (o.resume) {
    resumed = FLEET_TRY(store->rollout(*o.resume));
    if (!resumed) return fail(Errc::invalid_input, "no rollout " + *o.resume + " in " + o.state_db.string());
  }
  // The key to require: --trust-key, or on --resume the one the rollout started with.
  std::optional<stdfs::path> trust_key = o.trust_key;
  std::string trust_source = "--trust-key";
  if (!trust_key && resumed && !resumed->trust_key.empty()) {
    trust_key = resumed->trust_key;
    trust_source = "the --trust-key rollout " + *o.resume + " started with (give --trust-key again if it moved)";
  }
  std::optional<signing::PublicKey> trust;
  if (trust_key) {
    // A bundle the boards would refuse is refused here, before any board is touched.
    trust = FLEET_TRY(with_context(signing::read_public(*trust_key), trust_source));
    auto signer = bundle::check_signature(o.bundle, {*trust});
    if (!signer) return fail(Errc::invalid_input, signer.error().message);
  }
  auto serial = FLEET_TRY(parse_serial(o.serial));
  auto max_fail = FLEET_TRY(parse_max_fail(o.max_fail));

  store::RolloutRow ro;
  std::vector<RunnerBoard> boards;
  // The key kept with the rollout: --trust-key given (again), or the saved one.
  auto keep_trust = [&](store::RolloutRow& row) {
    if (!trust) return;
    row.trust_key = stdfs::absolute(*trust_key).string();
    row.signed_by = trust->id;
  };
  if (resumed) {
    ro = *resumed;
    keep_trust(ro);
    if (ro.build_key != manifest.build_key) {
      return fail(Errc::invalid_input, "rollout " + ro.id + " was of bundle " + ro.build_key.substr(0, 12) + ", not " +
                                           manifest.build_key.substr(0, 12));
    }
    for (auto& row : FLEET_TRY(store->boards(ro.id))) boards.push_back({std::move(row), "", 1});
    max_fail = FLEET_TRY(parse_max_fail(ro.max_fail));
    out << "resuming rollout " << ro.id << "\n";
  } else {
    auto hosts = FLEET_TRY(inventory::select(inv, o.limit));
    // Every board's measurement options, checked before anything is written or touched.
    for (const auto* h : hosts) {
      FLEET_TRY(bench_install_args(*h));
      FLEET_TRY(board_group(*h));
    }
    auto waves = plan_waves(hosts.size(), serial);
    ro.id = "r" + std::to_string(store::now_ms() / 1000) + "-" + random_hex(3);
    ro.bundle = stdfs::absolute(o.bundle).string();
    ro.build_key = manifest.build_key;
    ro.kernel_release = manifest.kernel_release;
    ro.inventory = o.inventory.string();
    ro.limit = o.limit;
    ro.serial = o.serial;
    ro.max_fail = o.max_fail;
    keep_trust(ro);
    ro.state = o.dry_run ? RolloutState::dry_run : RolloutState::running;
    ro.started_ms = store::now_ms();
    size_t i = 0;
    for (size_t w = 0; w < waves.size(); ++w) {
      for (size_t k = 0; k < waves[w]; ++k, ++i) {
        store::BoardRow b;
        b.rollout_id = ro.id;
        b.board = hosts[i]->name;
        b.wave = static_cast<int>(w);
        b.step = Step::pending;
        if (!o.dry_run) b.token = FLEET_TRY(tls::random_token());
        boards.push_back({std::move(b), "", 1});
      }
    }
    if (!o.dry_run) {
      FLEET_TRY(store->put_rollout(ro));
      std::vector<const store::BoardRow*> rows;
      for (const auto& b : boards) rows.push_back(&b.row);
      FLEET_TRY(store->put_boards(rows));
    }
    out << "rollout " << ro.id << ": " << manifest.kernel_release << " to " << boards.size() << " boards in "
        << waves.size() << " waves (serial " << o.serial << ", max-fail " << o.max_fail << ")\n";
  }

  // Groups come from the inventory as it is now (on --resume too); a board no longer in it
  // fails when its turn comes, with the reason.
  for (auto& b : boards) {
    if (const auto* h = inv.find(b.row.board)) std::tie(b.group, b.group_max_down) = FLEET_TRY(board_group(*h));
  }

  Payload payload;
  payload.agent = o.agent;
  payload.agent_sha256 = FLEET_TRY(hash::sha256_file(o.agent));
  payload.build_key = manifest.build_key;
  if (trust) {
    payload.trust_key = stdfs::absolute(*trust_key);
    payload.trust_key_id = trust->id;
    out << "bundle signed by key " << trust->id
        << (o.dry_run ? " (a rollout sets every board up to trust it)\n" : "; every board is set up to trust it\n");
  }
  auto endpoint_for = [&](const std::string& name) {
    return endpoint_of(inv, name, o.inventory, o.known_hosts, o.host_keys);
  };

  if (o.dry_run) {
    // Who signed the bundle, as the boards will see it (checked against --trust-key above).
    std::string signer;
    if (auto text = fs::read_file(o.bundle / bundle::k_signature)) {
      if (auto sig = bundle::parse_signature(*text, (o.bundle / bundle::k_signature).string())) signer = sig->key_id;
    }
    for (auto& rb : boards) {
      auto& b = rb.row;
      auto e = FLEET_TRY(endpoint_for(b.board));
      SshBoard board(e, payload);
      auto i = board.inspect();
      if (!i) {
        out << "  " << b.board << ": cannot inspect: " << i.error().message << "\n";
        continue;
      }
      bool on = i->running_release == manifest.kernel_release && i->committed_release == manifest.kernel_release;
      out << "  [wave " << b.wave + 1 << "] " << b.board << ": "
          << (on ? "already on " + manifest.kernel_release + ", skip"
                 : i->running_release + " -> " + manifest.kernel_release +
                       (i->agent_current ? "" : " (agent pushed first)"));
      if (auto refusal = signature_refusal(i->trusted_keys, signer, trust ? trust->id : ""); !on && !refusal.empty()) {
        out << "; " << refusal;
      }
      out << "\n";
    }
    // Groups: the order their boards' changes take (never more of a group down at once
    // than fleet_group_max_down allows).
    auto order = group_order(boards);
    for (std::size_t w = 0; w < order.size(); ++w) {
      if (order[w].batches.size() < 2) continue;
      out << "  [wave " << w + 1 << "] groups allow " << order[w].batches.size() << " rounds of changes:";
      for (std::size_t k = 0; k < order[w].batches.size(); ++k) {
        out << (k ? " | " : " ");
        for (std::size_t j = 0; j < order[w].batches[k].size(); ++j) out << (j ? " " : "") << order[w].batches[k][j];
      }
      out << "\n";
    }
    RolloutSummary s;
    s.id = ro.id;
    s.state = RolloutState::dry_run;
    return s;
  }

  payload.bundle_tar = FLEET_TRY(bundle_tar(o.bundle, manifest.build_key, o.work_dir));
  payload.bundle_tar_sha256 = FLEET_TRY(hash::sha256_file(payload.bundle_tar));

  // Reports: over TLS with a certificate from the controller's CA (made on first use),
  // each board's token for this rollout, nothing else.
  auto authority = FLEET_TRY(tls::Authority::open_or_create(tls::authority_dir(o.state_db)));
  if (authority.created_now()) {
    out << "made the controller's CA " << authority.certificate_file().string() << " (" << authority.certificate().subject
        << "); boards are set up to trust it\n";
  }
  controller::TokenBook tokens;
  for (const auto& b : boards) tokens.add(b.row.board, ro.id, b.row.token);
  controller::ReportServerOptions server_options{o.listen, FLEET_TRY(authority.issue_server())};
  auto server = FLEET_TRY(controller::ReportServer::start(server_options, std::move(tokens), *store));
  payload.ca_cert = authority.certificate_file();
  payload.report_address = o.report_address.empty()
                               ? "127.0.0.1:" + std::to_string(server->port())
                               : o.report_address;
  if (payload.report_address.ends_with(":0")) {
    payload.report_address.resize(payload.report_address.size() - 1);
    payload.report_address += std::to_string(server->port());
  }
  std::string bound = o.listen;
  if (bound.ends_with(":0")) bound = bound.substr(0, bound.size() - 1) + std::to_string(server->port());
  out << "reports: listening on " << bound << " (--listen), TLS with " << authority.certificate().subject
      << "; boards dial " << payload.report_address << "\n";

  // The real parts: SSH boards from the inventory, threads for their I/O, the terminal.
  BoardFactory factory = [&](const store::BoardRow& row) -> Result<std::unique_ptr<BoardIO>> {
    auto e = FLEET_TRY(endpoint_for(row.board));
    const auto* host = inv.find(row.board);
    // On --resume: an inventory edited since may have broken a board's variables.
    auto args = FLEET_TRY(bench_install_args(*host));
    return std::unique_ptr<BoardIO>(std::make_unique<SshBoard>(e, payload, std::move(args)));
  };
  RunnerOptions ropt;
  ropt.plan = Plan::update;
  ropt.kernel_release = manifest.kernel_release;
  ropt.max_fail = max_fail;
  ropt.forks = o.forks;
  ropt.prestage = o.prestage;
  ropt.timeouts = o.timeouts;
  auto executor = thread_executor(o.forks + std::max(16, o.forks));
  std::optional<LiveView> live;
  if (o.live) live.emplace(out, boards);
  RowSink sink = [&](const store::BoardRow& row) {
    if (live) live->update(row);
    else out << board_line(row) << "\n" << std::flush;
  };
  RolloutRunner runner(*store, factory, *executor, sink);
  auto result = runner.run(boards, ropt, &ro);
  live.reset();
  if (!result.message.empty()) out << result.message << "\n";
  RolloutSummary s;
  s.id = ro.id;
  s.state = result.state;
  s.committed = result.committed;
  s.skipped = result.skipped;
  s.failed = result.failed;
  s.not_started = result.not_started;
  FLEET_TRY(store->put_rollout(ro));
  FLEET_TRY(await_reports(*store, ro.id, result.reports_due, o.timeouts.reports, out));
  out << "rollout " << ro.id << " " << vocab::name(s.state) << ": " << s.committed << " committed, " << s.skipped
      << " skipped, " << s.failed << " failed, " << s.not_started << " not started\n";
  return s;
}

Result<RolloutSummary> run_rollback(const RollbackOptions& o, std::ostream& out) {
  auto inv = FLEET_TRY(inventory::load_inventory(o.inventory));
  auto store = FLEET_TRY(store::Store::open(o.state_db));
  std::vector<std::string> names;
  if (o.rollout) {
    auto found = FLEET_TRY(store->rollout(*o.rollout));
    if (!found) return fail(Errc::invalid_input, "no rollout " + *o.rollout + " in " + o.state_db.string());
    for (const auto& b : FLEET_TRY(store->boards(*o.rollout)))
      if (b.outcome == Outcome::committed) names.push_back(b.board);
    if (names.empty()) return fail(Errc::invalid_input, "rollout " + *o.rollout + " committed no board: nothing to roll back");
  } else {
    for (const auto* h : FLEET_TRY(inventory::select(inv, o.limit.value_or("all")))) names.push_back(h->name);
  }
  store::RolloutRow ro;
  ro.id = "b" + std::to_string(store::now_ms() / 1000) + "-" + random_hex(3);
  ro.inventory = o.inventory.string();
  ro.limit = o.rollout ? "boards of " + *o.rollout : o.limit.value_or("all");
  ro.state = RolloutState::running;
  ro.message = "rollback";
  ro.started_ms = store::now_ms();
  FLEET_TRY(store->put_rollout(ro));
  std::vector<RunnerBoard> boards;
  for (const auto& n : names) {
    store::BoardRow b;
    b.rollout_id = ro.id;
    b.board = n;
    b.step = Step::pending;
    boards.push_back({std::move(b), "", 1});
  }
  {
    std::vector<const store::BoardRow*> rows;
    for (const auto& b : boards) rows.push_back(&b.row);
    FLEET_TRY(store->put_boards(rows));
  }
  out << "rollback " << ro.id << ": " << boards.size() << " boards back to their previous kernel\n";
  Payload payload;  // nothing is pushed in a rollback
  BoardFactory factory = [&](const store::BoardRow& row) -> Result<std::unique_ptr<BoardIO>> {
    auto e = FLEET_TRY(endpoint_of(inv, row.board, o.inventory, o.known_hosts, o.host_keys));
    return std::unique_ptr<BoardIO>(std::make_unique<SshBoard>(e, payload));
  };
  RunnerOptions ropt;
  ropt.plan = Plan::rollback;
  ropt.max_fail = MaxFail{true, 100};  // one wave: every board is asked, whatever the others do
  ropt.forks = o.forks;
  ropt.timeouts = o.timeouts;
  auto executor = thread_executor(o.forks + std::max(16, o.forks));
  RowSink sink = [&](const store::BoardRow& row) { out << board_line(row) << "\n" << std::flush; };
  RolloutRunner runner(*store, factory, *executor, sink);
  auto result = runner.run(boards, ropt, &ro);
  if (!result.message.empty()) out << result.message << "\n";
  RolloutSummary s;
  s.id = ro.id;
  s.state = result.state;
  s.committed = result.committed;  // rolled back
  s.failed = result.failed;
  FLEET_TRY(store->put_rollout(ro));
  out << "rollback " << ro.id << " done: " << s.committed << " rolled back, " << s.failed << " failed\n";
  return s;
}

}  // namespace fleet::rollout
