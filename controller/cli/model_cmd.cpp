#include "controller/cli/model_cmd.hpp"

#include <unistd.h>

#include <array>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "common/args.hpp"
#include "controller/cli/cli.hpp"
#include "controller/model/push.hpp"
#include "controller/status/status_service.hpp"
#include "controller/store/store.hpp"
#include "proto/codec.hpp"

namespace fleet::controller::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;

const char* const k_model_usage =
    "usage: fleetctl model push FILE --inventory INV [OPTIONS]\n"
    "       fleetctl model list [--state FILE] [--json]\n";

int failed(const char* cmd, const Error& e, std::ostream& err) {
  err << "fleetctl model " << cmd << ": " << e.message << "\n";
  return e.code == Errc::invalid_input || e.code == Errc::not_found || e.code == Errc::parse ? k_exit_usage
                                                                                               : k_exit_failed;
}

std::string state_help() { return "the state database (default $FLEETCTL_STATE or ~/.local/state/fleetctl/fleet.db)"; }

int push(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
         const std::filesystem::path& default_state) {
  const std::array options = {
      args::Option{"inventory", args::Takes::value, "FILE", "the boards (Ansible INI or YAML inventory; required)"},
      args::Option{"limit", args::Takes::value, "PATTERN", "only the boards this host pattern selects (default all)"},
      args::Option{"dest", args::Takes::value, "DIR", "the models folder on each board (default /var/lib/fleet/models)"},
      args::Option{"max-rate", args::Takes::value, "BYTES",
                   "the controller's upload limit per second: 100M is 100 MB/s (k, M, G; Ki, Mi, Gi)"},
      args::Option{"board-max-rate", args::Takes::value, "BYTES", "each board's upload and download limit per second"},
      args::Option{"listen", args::Takes::value, "ADDR:PORT", "the controller's swarm port, TLS (default 0.0.0.0:0, any)"},
      args::Option{"advertise", args::Takes::value, "ADDR",
                   "the address boards dial for the controller (default: this machine's on each board's SSH connection)"},
      args::Option{"board-tools", args::Takes::value, "DIR|installed",
                   "fleet-model per board arch, copied to boards that lack it: DIR/ARCH/bin/fleet-model, "
                   "DIR/ARCH/lib/fleet-model/; or installed: each board's own (the fleet-model package's, of this "
                   "version). Default: installed for a packaged fleetctl, the source tree's build/board-tools for one "
                   "run from its build tree"},
      args::Option{"forks", args::Takes::value, "N", "boards set up at once over SSH (default 8)"},
      args::Option{"direct", args::Takes::nothing, "",
                   "boards fetch from the controller only, not from each other (to measure against: bench/model_push.sh)"},
      args::Option{"timeout", args::Takes::value, "SECONDS", "give up on boards not complete by then (default 21600)"},
      args::Option{"accept-new-host-keys", args::Takes::nothing, "", "add unknown boards to known_hosts"},
      args::Option{"known-hosts", args::Takes::value, "FILE", "known_hosts file (default ~/.ssh/known_hosts)"},
      args::Option{"state", args::Takes::value, "FILE", state_help()},
      args::Option{"json", args::Takes::nothing, "", "print the result as JSON"},
      args::Option{"help", args::Takes::nothing, "", "show this help"}};
  int code = 0;
  auto a = args::parse_command(
      argv, options,
      args::Usage{"fleetctl model push", "fleetctl model push FILE --inventory INV [OPTIONS]",
                  "Puts FILE on every selected board at DIR/NAME, peer to peer: boards fetch pieces from the\n"
                  "controller and from each other (BitTorrent over TLS with a CA made for this push; no DHT, no\n"
                  "tracker), each piece checked by SHA-256, the whole file by its sha256, then fsynced and renamed\n"
                  "into place. Boards that hold the file already are skipped; a board without room is refused\n"
                  "before any byte is sent. A push cut off continues from the pieces boards verified.",
                  1},
      out, err, code);
  if (!a) return code;
  if (a->positional.size() != 1) {
    err << "fleetctl model push: say which FILE\n" << k_model_usage;
    return k_exit_usage;
  }
  auto inv = a->value("inventory");
  if (!inv) {
    err << "fleetctl model push: --inventory is required\n" << k_model_usage;
    return k_exit_usage;
  }
  model::PushOptions o;
  o.file = a->positional[0];
  o.inventory = *inv;
  o.limit = a->value("limit").value_or("all");
  o.dest = a->value("dest").value_or(o.dest);
  if (auto r = a->value("max-rate")) {
    auto v = model::parse_bytes(*r, "--max-rate");
    if (!v) return failed("push", v.error(), err);
    o.max_rate = *v;
  }
  if (auto r = a->value("board-max-rate")) {
    auto v = model::parse_bytes(*r, "--board-max-rate");
    if (!v) return failed("push", v.error(), err);
    o.board_max_rate = *v;
  }
  if (o.max_rate > INT32_MAX || o.board_max_rate > INT32_MAX) {
    err << "fleetctl model push: a rate above 2 GB/s is no limit: leave it out\n";
    return k_exit_usage;
  }
  o.listen = a->value("listen").value_or(o.listen);
  o.advertise = a->value("advertise").value_or("");
  // A fleetctl run from its build tree copies the fleet-model built beside it; an installed
  // one (the .deb) uses the boards' own, from the fleet-model package.
  if (auto t = a->value("board-tools")) {
    if (t->empty()) {
      err << "fleetctl model push: --board-tools takes a folder or 'installed'\n";
      return k_exit_usage;
    }
    if (*t == "installed") {
      o.tools = model::BoardTools::installed;
    } else {
      o.board_tools = *t;
    }
  } else if (cli::installed_prefix()) {
    o.tools = model::BoardTools::installed;
  } else {
    o.board_tools = std::filesystem::path(FLEET_SOURCE_DIR) / "build" / "board-tools";
  }
  o.version = FLEET_VERSION;
  auto forks = args::int_value(*a, "forks", 1, 256);
  auto timeout = args::int_value(*a, "timeout", 1, 7 * 24 * 3600);
  if (!forks) return failed("push", forks.error(), err);
  if (!timeout) return failed("push", timeout.error(), err);
  if (*forks) o.forks = **forks;
  if (*timeout) o.timeout = std::chrono::seconds(**timeout);
  o.host_keys = a->flag("accept-new-host-keys") ? ssh::HostKeys::accept_new : ssh::HostKeys::strict;
  if (auto k = a->value("known-hosts")) o.known_hosts = *k;
  o.direct = a->flag("direct");
  o.state_db = a->value("state") ? std::filesystem::path(*a->value("state")) : default_state;
  const bool json = a->flag("json");
  o.live = !json && &out == &std::cout && ::isatty(STDOUT_FILENO) == 1 && !std::getenv("CI");
  std::ostringstream quiet;
  auto r = model::run_push(o, json ? static_cast<std::ostream&>(quiet) : out);
  if (!r) return failed("push", r.error(), err);
  if (json) {
    nlohmann::json boards = nlohmann::json::array();
    for (const auto& b : r->boards) {
      boards.push_back({{"board", b.board}, {"outcome", model::outcome_name(b.outcome)}, {"message", b.message},
                        {"seconds", b.seconds}, {"fetched_bytes", b.fetched}});
    }
    out << nlohmann::json{{"id", r->id},           {"name", r->name},     {"sha256", r->sha256},
                          {"size", r->size},       {"seconds", r->seconds}, {"controller_sent", r->controller_sent},
                          {"boards", boards}}
               .dump(2)
        << "\n";
  } else {
    int complete = 0, held = 0;
    for (const auto& b : r->boards) {
      complete += b.outcome == model::BoardOutcome::complete;
      held += b.outcome == model::BoardOutcome::held;
    }
    out << "model push " << r->id << " done in " << std::fixed << std::setprecision(1) << r->seconds << " s: " << complete
        << " complete, " << held << " held it already, " << r->failed() << " failed; the controller sent "
        << std::setprecision(2) << static_cast<double>(r->controller_sent) / std::max<double>(1, static_cast<double>(r->size))
        << " copies\n";
  }
  return r->failed() == 0 ? k_exit_ok : k_exit_failed;
}

int list(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
         const std::filesystem::path& default_state) {
  const std::array options = {args::Option{"state", args::Takes::value, "FILE", state_help()},
                              args::Option{"name", args::Takes::value, "NAME", "only the model files of this name"},
                              args::Option{"json", args::Takes::nothing, "", "print JSON for programs (fleet.v1.ListModelsResponse)"},
                              args::Option{"help", args::Takes::nothing, "", "show this help"}};
  int code = 0;
  auto a = args::parse_command(argv, options,
                               args::Usage{"fleetctl model list", "fleetctl model list [--name NAME] [--state FILE] [--json]",
                                           "Which boards hold which models (name, size, sha256, when), as model\n"
                                           "pushes found or left them. The StatusService answers the same (ListModels)."},
                               out, err, code);
  if (!a) return code;
  auto store = store::Store::open(a->value("state") ? std::filesystem::path(*a->value("state")) : default_state);
  if (!store) return failed("list", store.error(), err);
  auto models = controller::list_models(**store, a->value("name").value_or(""));
  if (!models) return failed("list", models.error(), err);
  if (a->flag("json")) {
    auto text = wire::to_json(*models, wire::Layout::indented);
    if (!text) return failed("list", text.error(), err);
    out << *text;
    return k_exit_ok;
  }
  if (models->models().empty()) {
    out << (a->value("name") ? "no board is known to hold " + *a->value("name") + "\n"
                             : std::string("no models known: fleetctl model push puts one on boards\n"));
    return k_exit_ok;
  }
  out << std::left << std::setw(28) << "MODEL" << std::setw(12) << "BOARD" << std::setw(12) << "SIZE" << std::setw(18)
      << "SHA256" << "WHEN (UTC)\n";
  for (const auto& m : models->models()) {
    char when[32];
    const std::time_t t = static_cast<std::time_t>(m.updated_unix_ms() / 1000);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::gmtime(&t));
    out << std::left << std::setw(28) << m.name() << std::setw(12) << m.board() << std::setw(12) << m.size_bytes()
        << std::setw(18) << m.sha256().substr(0, 16) << when << "\n";
  }
  return k_exit_ok;
}

}  // namespace

int model_command(const std::string& sub, const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
                  const std::filesystem::path& default_state) {
  if (sub == "push") return push(argv, out, err, default_state);
  if (sub == "list") return list(argv, out, err, default_state);
  if (sub == "--help" || sub == "-h") {
    out << k_model_usage;
    return k_exit_ok;
  }
  err << (sub.empty() ? std::string("fleetctl model: say push or list\n") : "fleetctl model: unknown command '" + sub + "'\n")
      << k_model_usage;
  return k_exit_usage;
}

}  // namespace fleet::controller::cli
