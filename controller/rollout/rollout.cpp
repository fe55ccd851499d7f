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

// Runs fn(i) for i in [0, count) on at most `forks` threads (Ansible's forks).
template <class F>
void for_each_board(size_t count, int forks, F&& fn) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k; (k = next++) < count;) fn(k);
  };
  std::vector<std::thread> threads;
  int n = std::max(1, std::min<int>(forks, static_cast<int>(count)));
  for (int t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
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

// A board that cannot be worked on at all (not in the inventory, bad variables): done,
// failed, and saved with the reason.
void fail_board(store::Store& store, store::BoardRow& b, const Error& why) {
  b.state = "done";
  b.outcome = "failed";
  b.message = why.message;
  (void)store.put_board(b);
}

std::string board_line(const store::BoardRow& b) {
  std::ostringstream o;
  o << "[wave " << b.wave + 1 << "] " << std::left << std::setw(12) << b.board << " "
    << (b.state == "done" ? b.outcome : b.state);
  if (b.state == "done" && !b.message.empty()) o << ": " << b.message;
  return o.str();
}

// The live view on a terminal: one line per board and the counts, redrawn in place.
class LiveView {
 public:
  LiveView(std::ostream& out, std::vector<store::BoardRow> rows) : out_(out), rows_(std::move(rows)) {}
  void update(const store::BoardRow& row) {
    for (auto& r : rows_)
      if (r.board == row.board) r = row;
    if (drawn_ > 0) out_ << "\033[" << drawn_ << "F\033[J";  // back to the top of the last drawing
    std::map<std::string, int> counts;
    for (const auto& r : rows_) {
      out_ << board_line(r).substr(0, 110) << "\n";
      ++counts[r.state == "done" ? r.outcome : (r.state == "pending" ? "waiting" : "working")];
    }
    std::string summary;
    for (const auto& [k, v] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    out_ << summary << "\n" << std::flush;
    drawn_ = static_cast<int>(rows_.size()) + 1;
  }

 private:
  std::ostream& out_;
  std::vector<store::BoardRow> rows_;
  int drawn_ = 0;
};

}  // namespace

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
  std::string inv_text = FLEET_TRY(fs::read_file(o.inventory));
  auto inv = FLEET_TRY(inventory::parse_inventory(inv_text, o.inventory.string()));
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
  std::vector<store::BoardRow> rows;
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
    rows = FLEET_TRY(store->boards(ro.id));
    max_fail = FLEET_TRY(parse_max_fail(ro.max_fail));
    out << "resuming rollout " << ro.id << "\n";
  } else {
    auto hosts = FLEET_TRY(inventory::select(inv, o.limit));
    // Every board's measurement options, checked before anything is written or touched.
    for (const auto* h : hosts) FLEET_TRY(bench_install_args(*h));
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
    ro.state = o.dry_run ? "dry-run" : "running";
    ro.started_ms = store::now_ms();
    size_t i = 0;
    for (size_t w = 0; w < waves.size(); ++w) {
      for (size_t k = 0; k < waves[w]; ++k, ++i) {
        store::BoardRow b;
        b.rollout_id = ro.id;
        b.board = hosts[i]->name;
        b.wave = static_cast<int>(w);
        b.state = "pending";
        if (!o.dry_run) b.token = FLEET_TRY(tls::random_token());
        rows.push_back(b);
      }
    }
    if (!o.dry_run) {
      FLEET_TRY(store->put_rollout(ro));
      for (const auto& b : rows) FLEET_TRY(store->put_board(b));
    }
    out << "rollout " << ro.id << ": " << manifest.kernel_release << " to " << rows.size() << " boards in "
        << waves.size() << " waves (serial " << o.serial << ", max-fail " << o.max_fail << ")\n";
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
    for (auto& b : rows) {
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
    RolloutSummary s;
    s.id = ro.id;
    s.state = "dry-run";
    return s;
  }

  payload.bundle_tar = FLEET_TRY(bundle_tar(o.bundle, manifest.build_key, o.work_dir));

  // Reports: over TLS with a certificate from the controller's CA (made on first use),
  // each board's token for this rollout, nothing else.
  auto authority = FLEET_TRY(tls::Authority::open_or_create(tls::authority_dir(o.state_db)));
  if (authority.created_now()) {
    out << "made the controller's CA " << authority.certificate_file().string() << " (" << authority.certificate().subject
        << "); boards are set up to trust it\n";
  }
  controller::TokenBook tokens;
  for (const auto& b : rows) tokens.add(b.board, ro.id, b.token);
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

  std::mutex out_mu;
  RealClock clock;
  BoardTarget target{manifest.kernel_release};
  LiveView live(out, rows);
  int waves = 0;
  for (const auto& b : rows) waves = std::max(waves, b.wave + 1);
  bool stopped = false;
  for (int w = 0; w < waves && !stopped; ++w) {
    std::vector<store::BoardRow*> wave;
    for (auto& b : rows)
      if (b.wave == w) wave.push_back(&b);
    for_each_board(wave.size(), o.forks, [&](size_t k) {
      store::BoardRow& b = *wave[k];
      if (b.state == "done" && !b.outcome.empty() && b.outcome != "not_started") return;
      if (b.state == "pending") b.state = "connect";
      auto e = endpoint_for(b.board);
      if (!e) return fail_board(*store, b, e.error());
      const auto* host = inv.find(b.board);
      auto args = host ? bench_install_args(*host) : Result<std::vector<std::string>>(std::vector<std::string>{});
      if (!args) return fail_board(*store, b, args.error());  // on --resume: an inventory edited since
      SshBoard board(*e, payload, *args);
      run_board(b, board, clock, o.timeouts, target, [&](const store::BoardRow& row) {
        (void)store->put_board(row);
        std::lock_guard lock(out_mu);
        if (o.live) live.update(row);
        else out << board_line(row) << "\n" << std::flush;
      });
    });
    size_t failed = 0;
    for (auto* b : wave) failed += is_failure(b->outcome) ? 1 : 0;
    if (exceeds(max_fail, failed, wave.size())) {
      stopped = true;
      ro.message = std::to_string(failed) + " of " + std::to_string(wave.size()) + " boards failed in wave " +
                   std::to_string(w + 1) + " (max-fail " + ro.max_fail + "): the remaining waves do not start";
      out << ro.message << "\n";
      for (auto& b : rows) {
        if (b.wave > w) {
          b.state = "done";
          b.outcome = "not_started";
          (void)store->put_board(b);
        }
      }
    }
  }
  RolloutSummary s;
  s.id = ro.id;
  for (const auto& b : rows) {
    if (b.outcome == "committed") ++s.committed;
    else if (b.outcome == "skipped") ++s.skipped;
    else if (b.outcome == "not_started") ++s.not_started;
    else ++s.failed;
  }
  ro.state = stopped ? "stopped" : "done";
  s.state = ro.state;
  FLEET_TRY(store->put_rollout(ro));
  // Give boards' reports a moment to land before the server goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  out << "rollout " << ro.id << " " << s.state << ": " << s.committed << " committed, " << s.skipped << " skipped, "
      << s.failed << " failed, " << s.not_started << " not started\n";
  return s;
}

Result<RolloutSummary> run_rollback(const RollbackOptions& o, std::ostream& out) {
  std::string inv_text = FLEET_TRY(fs::read_file(o.inventory));
  auto inv = FLEET_TRY(inventory::parse_inventory(inv_text, o.inventory.string()));
  auto store = FLEET_TRY(store::Store::open(o.state_db));
  std::vector<std::string> names;
  if (o.rollout) {
    auto found = FLEET_TRY(store->rollout(*o.rollout));
    if (!found) return fail(Errc::invalid_input, "no rollout " + *o.rollout + " in " + o.state_db.string());
    for (const auto& b : FLEET_TRY(store->boards(*o.rollout)))
      if (b.outcome == "committed") names.push_back(b.board);
    if (names.empty()) return fail(Errc::invalid_input, "rollout " + *o.rollout + " committed no board: nothing to roll back");
  } else {
    for (const auto* h : FLEET_TRY(inventory::select(inv, o.limit.value_or("all")))) names.push_back(h->name);
  }
  store::RolloutRow ro;
  ro.id = "b" + std::to_string(store::now_ms() / 1000) + "-" + random_hex(3);
  ro.inventory = o.inventory.string();
  ro.limit = o.rollout ? "boards of " + *o.rollout : o.limit.value_or("all");
  ro.state = "running";
  ro.message = "rollback";
  ro.started_ms = store::now_ms();
  FLEET_TRY(store->put_rollout(ro));
  std::vector<store::BoardRow> rows;
  for (const auto& n : names) {
    store::BoardRow b;
    b.rollout_id = ro.id;
    b.board = n;
    b.state = "connect";
    rows.push_back(b);
    FLEET_TRY(store->put_board(b));
  }
  out << "rollback " << ro.id << ": " << rows.size() << " boards back to their previous kernel\n";
  Payload payload;  // nothing is pushed in a rollback
  std::mutex out_mu;
  RealClock clock;
  for_each_board(rows.size(), o.forks, [&](size_t k) {
    auto& b = rows[k];
    auto e = endpoint_of(inv, b.board, o.inventory, o.known_hosts, o.host_keys);
    if (!e) return fail_board(*store, b, e.error());
    SshBoard board(*e, payload);
    run_board(b, board, clock, o.timeouts, BoardTarget{}, [&](const store::BoardRow& row) {
      (void)store->put_board(row);
      std::lock_guard lock(out_mu);
      out << board_line(row) << "\n" << std::flush;
    }, Plan::rollback);
  });
  RolloutSummary s;
  s.id = ro.id;
  for (const auto& b : rows) {
    if (is_failure(b.outcome, Plan::rollback)) ++s.failed;
    else ++s.committed;
  }
  ro.state = "done";
  s.state = ro.state;
  FLEET_TRY(store->put_rollout(ro));
  out << "rollback " << ro.id << " done: " << s.committed << " rolled back, " << s.failed << " failed\n";
  return s;
}

}  // namespace fleet::rollout
