#pragma once
// The controller's state in one SQLite file: rollouts, each board's place in them, and the
// reports boards sent. A board's state is written on entering it, before its work, so a
// killed controller resumes where it stopped (`fleetctl rollout --resume ID`).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "controller/vocab/vocab.hpp"

namespace fleet::store {

struct RolloutRow {
  std::string id;
  std::string bundle;          // path on the controller
  std::string build_key;
  std::string kernel_release;
  std::string inventory;
  std::string limit;
  std::string serial;
  std::string max_fail;
  vocab::RolloutState state = vocab::RolloutState::running;
  std::string message;
  std::int64_t started_ms = 0;
  std::int64_t updated_ms = 0;
  std::string trust_key;       // --trust-key (a path on the controller); --resume uses it again
  std::string signed_by;       // the id of the key whose signature the bundle carried
};

struct BoardRow {
  std::string rollout_id;
  std::string board;
  int wave = 0;
  vocab::Step step = vocab::Step::pending;
  vocab::Outcome outcome = vocab::Outcome::none;
  std::string message;
  std::string token;           // this board's report token for this rollout
  std::string boot_id;         // before the trial reboot: proves the reboot happened
  std::string running_release;
  std::string checks_json;     // the verification from the agent's last report
  std::int64_t agent_sequence = 0;  // the agent's report count before the update: later ones are its outcome
  std::int64_t updated_ms = 0;
};

struct ReportRow {
  std::string board;
  std::string rollout_id;
  std::uint64_t sequence = 0;
  std::string phase;
  std::string running_release;
  std::string message;
  std::string checks_json;      // fleet.v1.Verification in the codec's JSON (proto/codec.hpp), "" if none
  std::int64_t at_ms = 0;
  std::string throughput_json;  // fleet.v1.Throughput in the codec's JSON, "" if none
};

// A model a board holds (fleetctl model push put it there, or found it there).
struct ModelRow {
  std::string board;
  std::string path;     // on the board
  std::string name;
  std::string sha256;
  std::int64_t size = 0;
  std::string push_id;  // the push that put or found it
  std::int64_t at_ms = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& file);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Result<void> put_rollout(const RolloutRow& r);
  Result<std::optional<RolloutRow>> rollout(const std::string& id);
  Result<std::vector<RolloutRow>> rollouts(int limit = 20);

  Result<void> put_board(const BoardRow& b);
  // Many rows in one transaction: all of them are saved, or none (the error says why).
  // The rollout saves every board that entered a step in one pass of its loop this way.
  Result<void> put_boards(std::span<const BoardRow* const> rows);
  Result<std::vector<BoardRow>> boards(const std::string& rollout_id);
  // The latest row of each board across rollouts (for `fleetctl status`).
  Result<std::vector<BoardRow>> latest_boards();
  // Rows written after `since_ms` (for watchers), oldest first.
  Result<std::vector<BoardRow>> boards_changed_since(std::int64_t since_ms, const std::string& rollout_id = "");

  Result<void> add_report(const ReportRow& r);

  // What `fleetctl model list` shows: one row per (board, path), the latest known.
  Result<void> put_model(const ModelRow& m);
  Result<std::vector<ModelRow>> models();
  Result<std::vector<ReportRow>> reports(const std::string& board, int limit = 50);

  // The replay guard of the report service: records `sequence` as the last accepted report
  // of `board` in `rollout_id` and returns true if it is higher than the last one recorded;
  // returns false and writes nothing for a replay (equal or lower). Kept in the file, so a
  // restarted controller (--resume) refuses what it had accepted before. Per rollout, not
  // per board alone: a board whose agent state was wiped starts again at 1 in its next
  // rollout, and a report of another rollout never gets this far (its token is refused).
  Result<bool> advance_report_sequence(const std::string& board, const std::string& rollout_id, std::uint64_t sequence);
  // The last sequence accepted from `board` in `rollout_id` (0: none yet).
  Result<std::uint64_t> last_report_sequence(const std::string& board, const std::string& rollout_id);
  // A report as the report service takes it: advances the sequence and adds the row in one
  // transaction, or (a replay) does neither and returns false.
  Result<bool> accept_report(const ReportRow& r);

  const std::filesystem::path& file() const { return file_; }

 private:
  Store() = default;
  Result<void> exec(const std::string& sql);
  Result<void> commit_or_roll_back();
  Result<void> migrate();
  void* db_ = nullptr;  // sqlite3*
  std::filesystem::path file_;
};

std::int64_t now_ms();

}  // namespace fleet::store
