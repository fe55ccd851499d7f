#include "controller/rollout/ssh_board.hpp"

#include "common/bundle.hpp"

#include <nlohmann/json.hpp>

#include "proto/codec.hpp"

namespace fleet::rollout {
namespace {
using namespace std::chrono_literals;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}
}  // namespace

Result<fleet::v1::AgentStatus> read_agent_status(std::string_view text, const std::string& source) {
  auto st = FLEET_TRY(wire::parse<fleet::v1::AgentStatus>(text, source));
  if (st.state() == fleet::v1::AGENT_STATE_UNSPECIFIED) {
    // An agent from before AgentStatus printed its state in lowercase. Rollback does not
    // replace the agent, so its two resting states are still understood; any other stays
    // unknown (busy).
    auto j = nlohmann::json::parse(text, nullptr, false);
    const std::string old = j.is_object() && j.contains("state") && j["state"].is_string() ? j["state"].get<std::string>() : "";
    if (old == "idle") st.set_state(fleet::v1::AGENT_IDLE);
    if (old == "installed") st.set_state(fleet::v1::AGENT_INSTALLED);
  }
  return st;
}

AgentView agent_view_of(const fleet::v1::AgentStatus& st) {
  AgentView v;
  switch (st.state()) {
    case fleet::v1::AGENT_IDLE: v.state = AgentState::idle; break;
    case fleet::v1::AGENT_INSTALLED: v.state = AgentState::installed; break;
    default: v.state = AgentState::busy; break;  // working, or a state this controller does not know
  }
  v.sequence = st.sequence();
  v.committed_release = st.committed().release();
  if (st.has_last()) {
    switch (st.last().phase()) {
      case fleet::v1::COMMITTED: v.last_phase = AgentPhase::committed; break;
      case fleet::v1::ROLLED_BACK: v.last_phase = AgentPhase::rolled_back; break;
      case fleet::v1::BOOT_FAILED: v.last_phase = AgentPhase::boot_failed; break;
      case fleet::v1::INSTALL_FAILED: v.last_phase = AgentPhase::install_failed; break;
      case fleet::v1::PHASE_UNSPECIFIED: v.last_phase = AgentPhase::none; break;
      default: v.last_phase = AgentPhase::other; break;
    }
    v.last_message = st.last().message();
  }
  return v;
}

Result<void> SshBoard::connect() {
  session_.reset();
  session_ = FLEET_TRY(ssh::Session::connect(endpoint_));
  return {};
}

Result<ssh::Session*> SshBoard::session() {
  if (!session_) FLEET_TRY(connect());
  return session_.get();
}

Result<Inspection> SshBoard::inspect() {
  auto* s = FLEET_TRY(session());
  Inspection i;
  i.boot_id = trimmed(FLEET_TRY(s->check({"cat", "/proc/sys/kernel/random/boot_id"}, 30s)));
  // What uname -r prints, read where the agent reads it (a light board's kernel is a file).
  i.running_release = trimmed(FLEET_TRY(s->check({"cat", "/proc/sys/kernel/osrelease"}, 30s)));
  auto sum = FLEET_TRY(s->run({"sha256sum", k_remote_agent}, 30s));
  agent_current_ = sum.exit_status == 0 && sum.out.substr(0, 64) == payload_.agent_sha256;
  i.agent_current = agent_current_;
  auto status = FLEET_TRY(s->run({k_remote_agent, "status", "--json"}, 30s));
  if (status.exit_status == 0) {
    auto st = read_agent_status(status.out, "board " + endpoint_.name + ": fleet-agent status --json");
    if (st) {
      i.committed_release = st->committed().release();
      i.agent_sequence = st->sequence();
      i.trusted_keys.assign(st->trusted_keys().begin(), st->trusted_keys().end());
    } else if (agent_current_) {
      // Our own agent must speak the contract; an older one is replaced before install.
      return std::unexpected(st.error());
    }
  }
  return i;
}

Result<bool> SshBoard::agent_is_current(ssh::Session& s) {
  if (!agent_current_) {
    // This object may not be the one that inspected the board (a slot is given up while a
    // board waits at staged): the board's agent is looked at again before it is replaced.
    auto sum = FLEET_TRY(s.run({"sha256sum", k_remote_agent}, 30s));
    agent_current_ = sum.exit_status == 0 && sum.out.substr(0, 64) == payload_.agent_sha256;
  }
  return agent_current_;
}

std::string SshBoard::staged_agent() const { return std::string(k_remote_incoming) + "/fleet-agent-" + payload_.agent_sha256; }

Result<void> SshBoard::stage_agent(ssh::Session& s) {
  if (FLEET_TRY(agent_is_current(s))) return {};
  if (payload_.agent_sha256.size() != 64) {
    return fail(Errc::invalid_input, "board " + endpoint_.name + ": no sha256 of the agent to check the upload with");
  }
  // upload() names the file only once the board's sha256 of it matches; one already there
  // (a resumed rollout) is checked again, not trusted by its name.
  auto there = FLEET_TRY(s.run({"sha256sum", staged_agent()}, 30s));
  if (there.exit_status == 0 && there.out.substr(0, 64) == payload_.agent_sha256) return {};
  FLEET_TRY(s.check({"mkdir", "-p", k_remote_incoming}, 30s));
  // Agents staged by earlier rollouts that never installed them: 14 MB each on the board.
  // (-exec, not -delete: busybox find has no -delete.)
  FLEET_TRY(s.check({"find", k_remote_incoming, "-maxdepth", "1", "-name", "fleet-agent-*", "!", "-name",
                     "fleet-agent-" + payload_.agent_sha256 + "*", "-exec", "rm", "-f", "{}", ";"},
                    30s));
  auto r = s.upload(payload_.agent, staged_agent());
  if (!r) {
    session_.reset();
    return std::unexpected(r.error());
  }
  return {};
}

Result<void> SshBoard::push_agent(const std::string& token) {
  auto* s = FLEET_TRY(session());
  if (!FLEET_TRY(agent_is_current(*s))) {
    // Staged with the bundle (while the previous wave was on trial): now only moved into
    // place, within /usr/local/bin so that the last step is one rename, and checked there.
    FLEET_TRY(stage_agent(*s));
    const std::string next = std::string(k_remote_agent) + ".new";
    FLEET_TRY(s->check({"mkdir", "-p", "/usr/local/bin"}, 30s));
    FLEET_TRY(s->check({"cp", staged_agent(), next}, 60s));
    FLEET_TRY(s->check({"chmod", "0755", next}, 30s));
    auto sum = FLEET_TRY(s->check({"sha256sum", next}, 30s));
    if (sum.substr(0, 64) != payload_.agent_sha256) {
      auto e = fail(Errc::mismatch, "board " + endpoint_.name + ": the agent copied to " + next + " has sha256 " +
                                        sum.substr(0, 64) + ", not " + payload_.agent_sha256);
      FLEET_TRY(s->check({"rm", "-f", next}, 30s));
      return e;
    }
    FLEET_TRY(s->check({"mv", "-f", next, k_remote_agent}, 30s));
    agent_current_ = true;  // in place: a retry goes on to the setup
    FLEET_TRY(s->check({"rm", "-f", staged_agent()}, 30s));
  }
  if (payload_.ca_cert.empty()) {
    return fail(Errc::invalid_input, "board " + endpoint_.name + ": no CA certificate to set the agent up with");
  }
  // The CA certificate is public: it goes through the same incoming folder as a trusted key.
  const std::string incoming = k_remote_incoming;
  const std::string ca_file = incoming + "/controller-ca.pem";
  FLEET_TRY(s->check({"mkdir", "-p", incoming}, 30s));
  FLEET_TRY(s->upload(payload_.ca_cert, ca_file));
  std::vector<std::string> setup = {k_remote_agent, "setup", "--board-id", endpoint_.name, "--controller",
                                    payload_.report_address, "--token", token, "--ca", ca_file};
  std::string key_file;
  if (!payload_.trust_key.empty()) {
    key_file = incoming + "/trust-" + payload_.trust_key_id + ".pem";
    FLEET_TRY(s->upload(payload_.trust_key, key_file));
    setup.insert(setup.end(), {"--trust-key", key_file});
  }
  FLEET_TRY(s->check(setup, 30s));
  FLEET_TRY(s->check({"rm", "-f", ca_file}, 30s));
  if (!key_file.empty()) FLEET_TRY(s->check({"rm", "-f", key_file}, 30s));
  return {};
}

Result<void> SshBoard::push_bundle() {
  // The key names a folder that is `rm -rf`ed on the board: checked here again, whatever
  // the manifest's parser let through.
  if (!bundle::is_build_key(payload_.build_key)) {
    return fail(Errc::invalid_input, "bundle build key '" + payload_.build_key + "' is not 64 lowercase hex digits");
  }
  if (payload_.bundle_tar_sha256.size() != 64) {
    return fail(Errc::invalid_input, "board " + endpoint_.name + ": no sha256 of the bundle's tar to check the upload with");
  }
  auto* s = FLEET_TRY(session());
  // The agent goes ahead with the bundle: uploaded and checked, not yet in place.
  FLEET_TRY(stage_agent(*s));
  const std::string incoming = k_remote_incoming;
  const std::string tar = incoming + "/" + payload_.build_key + ".tar";
  const std::string dir = std::string(k_remote_bundles) + "/" + payload_.build_key;
  // Beside the unpacked folder (not in it: the agent refuses files its manifest does not
  // list): the sha256 of the tar it came from. The same tar already unpacked is not sent
  // again (a resumed rollout, a pre-staged board).
  const std::string stamp = dir + ".tar-sha256";
  // The stamp counts only with the unpacked manifest beside it (a folder removed by hand
  // leaves its stamp behind); the agent checks every file against the manifest at install.
  if (auto have = s->run({"sh", "-c", "test -f " + dir + "/manifest.json && cat " + stamp}, 30s);
      have && have->exit_status == 0 && trimmed(have->out) == payload_.bundle_tar_sha256) {
    return {};
  }
  FLEET_TRY(s->check({"mkdir", "-p", incoming, k_remote_bundles}, 30s));
  FLEET_TRY(s->check({"rm", "-f", stamp}, 30s));
  auto r = s->upload(payload_.bundle_tar, tar);
  if (!r) {
    session_.reset();  // a broken transfer leaves a dead session; the retry reconnects and resumes
    return std::unexpected(r.error());
  }
  // upload() checked the board's sha256 of what arrived before naming it `tar`.
  FLEET_TRY(s->check({"rm", "-rf", dir}, 60s));
  FLEET_TRY(s->check({"mkdir", "-p", dir}, 30s));
  // Not the archive's owners and modes (GNU tar drops setuid bits with these; busybox tar
  // keeps them): the agent refuses a bundle holding anything but plain files and folders,
  // whatever tar made of it.
  FLEET_TRY(s->check({"tar", "-x", "-o", "--no-same-permissions", "-f", tar, "-C", dir}, 300s));
  FLEET_TRY(s->check({"rm", "-f", tar}, 30s));
  FLEET_TRY(s->check({"sh", "-c", "echo " + payload_.bundle_tar_sha256 + " > " + stamp}, 30s));
  return {};
}

Result<void> SshBoard::install(const std::string& rollout_id) {
  if (!bundle::is_build_key(payload_.build_key)) {
    return fail(Errc::invalid_input, "bundle build key '" + payload_.build_key + "' is not 64 lowercase hex digits");
  }
  auto* s = FLEET_TRY(session());
  std::vector<std::string> argv = {k_remote_agent, "install", "--bundle",
                                   std::string(k_remote_bundles) + "/" + payload_.build_key, "--rollout", rollout_id};
  argv.insert(argv.end(), install_args_.begin(), install_args_.end());
  FLEET_TRY(s->check(argv, 600s));
  return {};
}

Result<void> SshBoard::tryboot() {
  auto* s = FLEET_TRY(session());
  // The board goes down under us: a lost connection is the expected answer.
  auto r = s->run({k_remote_agent, "tryboot"}, 30s);
  session_.reset();
  if (r && r->exit_status != 0) {
    return fail(Errc::process_failed, "board " + endpoint_.name + ": fleet-agent tryboot: " + trimmed(r->err));
  }
  return {};
}

Result<void> SshBoard::rollback() {
  auto* s = FLEET_TRY(session());
  auto r = s->run({k_remote_agent, "rollback"}, 30s);
  session_.reset();
  if (r && r->exit_status != 0) {
    return fail(Errc::process_failed, "board " + endpoint_.name + ": fleet-agent rollback: " + trimmed(r->err));
  }
  return {};
}

Result<std::string> SshBoard::boot_id() {
  auto* s = FLEET_TRY(session());
  auto r = s->check({"cat", "/proc/sys/kernel/random/boot_id"}, 30s);
  if (!r) {
    session_.reset();
    return std::unexpected(r.error());
  }
  return trimmed(*r);
}

Result<AgentView> SshBoard::agent_view() {
  auto* s = FLEET_TRY(session());
  auto out = s->check({k_remote_agent, "status", "--json"}, 30s);
  if (!out) {
    session_.reset();
    return std::unexpected(out.error());
  }
  auto st = FLEET_TRY(read_agent_status(*out, "board " + endpoint_.name + ": fleet-agent status --json"));
  return agent_view_of(st);
}

}  // namespace fleet::rollout
