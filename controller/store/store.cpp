#include "controller/store/store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace fleet::store {
namespace {

sqlite3* D(void* p) { return static_cast<sqlite3*>(p); }

// A prepared statement with positional text/int binding, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(st_); }
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  std::string text(int col) {
    auto p = sqlite3_column_text(st_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t integer(int col) { return sqlite3_column_int64(st_, col); }
  std::string error() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

constexpr const char* k_schema = R"(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE IF NOT EXISTS rollouts (
  id TEXT PRIMARY KEY, bundle TEXT, build_key TEXT, kernel_release TEXT, inventory TEXT,
  lim TEXT, serial TEXT, max_fail TEXT, state TEXT, message TEXT, started_ms INTEGER, updated_ms INTEGER);
CREATE TABLE IF NOT EXISTS boards (
  rollout_id TEXT, board TEXT, wave INTEGER, state TEXT, outcome TEXT, message TEXT, token TEXT,
  boot_id TEXT, running_release TEXT, checks_json TEXT, agent_seq INTEGER, updated_ms INTEGER,
  PRIMARY KEY (rollout_id, board));
CREATE INDEX IF NOT EXISTS boards_by_board ON boards (board, updated_ms);
CREATE INDEX IF NOT EXISTS boards_by_time ON boards (updated_ms);
CREATE TABLE IF NOT EXISTS reports (
  board TEXT, rollout_id TEXT, sequence INTEGER, phase TEXT, running_release TEXT, message TEXT,
  checks_json TEXT, at_ms INTEGER, PRIMARY KEY (board, sequence));
CREATE TABLE IF NOT EXISTS report_sequences (
  board TEXT, rollout_id TEXT, sequence INTEGER, PRIMARY KEY (board, rollout_id));
CREATE TABLE IF NOT EXISTS models (
  board TEXT, path TEXT, name TEXT, sha256 TEXT, size INTEGER, push_id TEXT, at_ms INTEGER,
  PRIMARY KEY (board, path));
)";

std::mutex g_mu;  // one writer at a time from this process's threads

}  // namespace

// Creates `file` 0600 if it is new; tightens a wider mode with a warning.
static Result<void> secure_db_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno != EEXIST) {
    return fail(Errc::io, "cannot create the state database " + file.string() + ": " + std::strerror(errno));
  }
  // A journal or WAL left by a crash holds recent rows too: same mode as the database.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const auto side = file.string() + suffix;
    struct ::stat sst {};
    if (::lstat(side.c_str(), &sst) == 0 && S_ISREG(sst.st_mode) && (sst.st_mode & 077) != 0) ::chmod(side.c_str(), 0600);
  }
  struct ::stat st {};
  if (::stat(file.c_str(), &st) != 0) return fail(Errc::io, "cannot stat " + file.string() + ": " + std::strerror(errno));
  if ((st.st_mode & 077) != 0) {
    if (::chmod(file.c_str(), 0600) != 0) {
      return fail(Errc::io, "the state database " + file.string() + " is readable by others (it holds board tokens) "
                            "and cannot be made 0600: " + std::strerror(errno));
    }
    // A warning, not an error: the file is safe now, and the operator should know it was not.
    std::fprintf(stderr, "fleetctl: warning: the state database %s was mode %04o, readable by others, and it holds "
                         "board tokens: now 0600\n", file.c_str(), static_cast<unsigned>(st.st_mode & 07777));
  }
  return {};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& file) {
  std::unique_ptr<Store> s(new Store());
  s->file_ = file;
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  // The database holds every board's report token: 0600 from its first byte (SQLite gives
  // its journal and WAL files the database's mode), and tightened if found wider.
  FLEET_TRY(secure_db_file(file));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  s->db_ = db;
  if (rc != SQLITE_OK) return fail(Errc::io, "cannot open the state database " + file.string() + ": " + sqlite3_errstr(rc));
  sqlite3_busy_timeout(db, 5000);
  FLEET_TRY(s->exec(k_schema));
  FLEET_TRY(s->migrate());
  return s;
}

Store::~Store() {
  if (db_) sqlite3_close(D(db_));
}

// Columns added after the first release, each with the ALTER that adds it to an older file.
Result<void> Store::migrate() {
  struct Added {
    const char* table;
    const char* column;
    const char* alter;
  };
  static constexpr Added k_added[] = {
      {"reports", "throughput_json", "ALTER TABLE reports ADD COLUMN throughput_json TEXT DEFAULT ''"},
      {"rollouts", "trust_key", "ALTER TABLE rollouts ADD COLUMN trust_key TEXT DEFAULT ''"},
      {"rollouts", "signed_by", "ALTER TABLE rollouts ADD COLUMN signed_by TEXT DEFAULT ''"},
  };
  for (const auto& a : k_added) {
    bool present = false;
    {
      std::lock_guard lock(g_mu);
      const std::string sql = std::string("SELECT name FROM pragma_table_info('") + a.table + "')";
      Stmt st(D(db_), sql.c_str());
      while (st.step() == SQLITE_ROW) present = present || st.text(0) == a.column;
    }
    if (!present) FLEET_TRY(exec(a.alter));
  }
  return {};
}

Result<void> Store::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(D(db_), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return fail(Errc::io, file_.string() + ": " + msg);
  }
  return {};
}

Result<void> Store::put_rollout(const RolloutRow& r) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_),
          "INSERT OR REPLACE INTO rollouts (id,bundle,build_key,kernel_release,inventory,lim,serial,max_fail,state,"
          "message,started_ms,updated_ms,trust_key,signed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return fail(Errc::io, file_.string() + ": " + st.error());
  st.bind(1, r.id).bind(2, r.bundle).bind(3, r.build_key).bind(4, r.kernel_release).bind(5, r.inventory);
  st.bind(6, r.limit).bind(7, r.serial).bind(8, r.max_fail).bind(9, std::string(vocab::name(r.state)));
  st.bind(10, r.message);
  st.bind(11, r.started_ms).bind(12, now_ms()).bind(13, r.trust_key).bind(14, r.signed_by);
  if (st.step() != SQLITE_DONE) return fail(Errc::io, file_.string() + ": " + st.error());
  return {};
}

namespace {
// A stored name that is not one of ours (a newer fleetctl's file, or an edited one) is an
// error naming the row, never a default.
Result<RolloutRow> rollout_from(Stmt& st, const std::filesystem::path& file) {
  RolloutRow r;
  r.id = st.text(0);
  r.bundle = st.text(1);
  r.build_key = st.text(2);
  r.kernel_release = st.text(3);
  r.inventory = st.text(4);
  r.limit = st.text(5);
  r.serial = st.text(6);
  r.max_fail = st.text(7);
  auto state = vocab::rollout_state_from_name(st.text(8));
  if (!state) return fail(Errc::parse, file.string() + ": rollout " + r.id + ": unknown state '" + st.text(8) + "'");
  r.state = *state;
  r.message = st.text(9);
  r.started_ms = st.integer(10);
  r.updated_ms = st.integer(11);
  r.trust_key = st.text(12);
  r.signed_by = st.text(13);
  return r;
}
Result<BoardRow> board_from(Stmt& st, const std::filesystem::path& file) {
  BoardRow b;
  b.rollout_id = st.text(0);
  b.board = st.text(1);
  b.wave = static_cast<int>(st.integer(2));
  auto step = vocab::step_from_name(st.text(3));
  auto outcome = vocab::outcome_from_name(st.text(4));
  if (!step || !outcome) {
    return fail(Errc::parse, file.string() + ": board " + b.board + " of rollout " + b.rollout_id + ": unknown " +
                                 (step ? "outcome '" + st.text(4) : "step '" + st.text(3)) + "'");
  }
  b.step = *step;
  b.outcome = *outcome;
  b.message = st.text(5);
  b.token = st.text(6);
  b.boot_id = st.text(7);
  b.running_release = st.text(8);
  b.checks_json = st.text(9);
  b.agent_sequence = st.integer(10);
  b.updated_ms = st.integer(11);
  return b;
}
constexpr const char* k_rollout_cols =
    "id,bundle,build_key,kernel_release,inventory,lim,serial,max_fail,state,message,started_ms,updated_ms,trust_key,"
    "signed_by";
constexpr const char* k_board_cols =
    "rollout_id,board,wave,state,outcome,message,token,boot_id,running_release,checks_json,agent_seq,updated_ms";
}  // namespace

Result<std::optional<RolloutRow>> Store::rollout(const std::string& id) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), (std::string("SELECT ") + k_rollout_cols + " FROM rollouts WHERE id=?").c_str());
  st.bind(1, id);
  if (st.step() == SQLITE_ROW) return std::optional<RolloutRow>(FLEET_TRY(rollout_from(st, file_)));
  return std::optional<RolloutRow>();
}

Result<std::vector<RolloutRow>> Store::rollouts(int limit) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), (std::string("SELECT ") + k_rollout_cols + " FROM rollouts ORDER BY started_ms DESC LIMIT ?").c_str());
  st.bind(1, std::int64_t{limit});
  std::vector<RolloutRow> out;
  while (st.step() == SQLITE_ROW) out.push_back(FLEET_TRY(rollout_from(st, file_)));
  return out;
}

Result<void> Store::put_board(const BoardRow& b) {
  const BoardRow* one[] = {&b};
  return put_boards(one);
}

Result<void> Store::put_boards(std::span<const BoardRow* const> rows) {
  if (rows.empty()) return {};
  std::lock_guard lock(g_mu);
  FLEET_TRY(exec("BEGIN IMMEDIATE"));
  auto written = [&]() -> Result<void> {
    Stmt st(D(db_), (std::string("INSERT OR REPLACE INTO boards (") + k_board_cols +
                     ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)").c_str());
    if (!st.ok()) return fail(Errc::io, file_.string() + ": " + st.error());
    const std::int64_t now = now_ms();
    for (const BoardRow* b : rows) {
      st.reset();
      st.bind(1, b->rollout_id).bind(2, b->board).bind(3, std::int64_t{b->wave});
      st.bind(4, std::string(vocab::name(b->step))).bind(5, std::string(vocab::name(b->outcome)));
      st.bind(6, b->message).bind(7, b->token).bind(8, b->boot_id).bind(9, b->running_release);
      st.bind(10, b->checks_json).bind(11, b->agent_sequence).bind(12, now);
      if (st.step() != SQLITE_DONE) return fail(Errc::io, file_.string() + ": board " + b->board + ": " + st.error());
    }
    return {};
  }();
  if (!written) {
    if (auto undone = exec("ROLLBACK"); !undone) {
      return fail(Errc::io, written.error().message + "; the rollback failed too: " + undone.error().message);
    }
    return written;
  }
  return commit_or_roll_back();
}

// A COMMIT that fails (a full disk, an I/O error) may leave the transaction open, and every
// later BEGIN would fail with it: it is rolled back, so the next write can succeed.
Result<void> Store::commit_or_roll_back() {
  auto committed = exec("COMMIT");
  if (!committed && !sqlite3_get_autocommit(D(db_))) {
    if (auto undone = exec("ROLLBACK"); !undone) {
      return fail(Errc::io, committed.error().message + "; the rollback failed too: " + undone.error().message);
    }
  }
  return committed;
}

Result<std::vector<BoardRow>> Store::boards(const std::string& rollout_id) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), (std::string("SELECT ") + k_board_cols + " FROM boards WHERE rollout_id=? ORDER BY wave, board").c_str());
  st.bind(1, rollout_id);
  std::vector<BoardRow> out;
  while (st.step() == SQLITE_ROW) out.push_back(FLEET_TRY(board_from(st, file_)));
  return out;
}

Result<std::vector<BoardRow>> Store::latest_boards() {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), (std::string("SELECT ") + k_board_cols +
                   " FROM boards b WHERE updated_ms = (SELECT MAX(updated_ms) FROM boards WHERE board=b.board) "
                   "ORDER BY board").c_str());
  std::vector<BoardRow> out;
  while (st.step() == SQLITE_ROW) out.push_back(FLEET_TRY(board_from(st, file_)));
  return out;
}

Result<std::vector<BoardRow>> Store::boards_changed_since(std::int64_t since_ms, const std::string& rollout_id) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), (std::string("SELECT ") + k_board_cols +
                   " FROM boards WHERE updated_ms > ? AND (? = '' OR rollout_id = ?) ORDER BY updated_ms").c_str());
  st.bind(1, since_ms).bind(2, rollout_id).bind(3, rollout_id);
  std::vector<BoardRow> out;
  while (st.step() == SQLITE_ROW) out.push_back(FLEET_TRY(board_from(st, file_)));
  return out;
}

Result<void> Store::add_report(const ReportRow& r) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), "INSERT OR IGNORE INTO reports (board,rollout_id,sequence,phase,running_release,message,checks_json,"
                  "at_ms,throughput_json) VALUES (?,?,?,?,?,?,?,?,?)");
  st.bind(1, r.board).bind(2, r.rollout_id).bind(3, static_cast<std::int64_t>(r.sequence)).bind(4, r.phase);
  st.bind(5, r.running_release).bind(6, r.message).bind(7, r.checks_json).bind(8, r.at_ms);
  st.bind(9, r.throughput_json);
  if (st.step() != SQLITE_DONE) return fail(Errc::io, file_.string() + ": " + st.error());
  return {};
}

namespace {

// The replay guard's one statement (the caller holds g_mu): the check and the write cannot
// be split by another process's write. True if `sequence` is higher than the last one.
Result<bool> advance_unlocked(sqlite3* db, const std::filesystem::path& file, const std::string& board,
                              const std::string& rollout_id, std::uint64_t sequence) {
  if (sequence > static_cast<std::uint64_t>(INT64_MAX)) {
    return fail(Errc::invalid_input, "report sequence " + std::to_string(sequence) + " of board " + board + " is out of range");
  }
  Stmt st(db, "INSERT INTO report_sequences (board,rollout_id,sequence) VALUES (?,?,?) "
              "ON CONFLICT(board,rollout_id) DO UPDATE SET sequence=excluded.sequence "
              "WHERE excluded.sequence > report_sequences.sequence");
  if (!st.ok()) return fail(Errc::io, file.string() + ": " + st.error());
  st.bind(1, board).bind(2, rollout_id).bind(3, static_cast<std::int64_t>(sequence));
  if (st.step() != SQLITE_DONE) return fail(Errc::io, file.string() + ": " + st.error());
  return sqlite3_changes(db) == 1;
}

}  // namespace

Result<bool> Store::advance_report_sequence(const std::string& board, const std::string& rollout_id,
                                           std::uint64_t sequence) {
  std::lock_guard lock(g_mu);
  return advance_unlocked(D(db_), file_, board, rollout_id, sequence);
}

Result<std::uint64_t> Store::last_report_sequence(const std::string& board, const std::string& rollout_id) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), "SELECT sequence FROM report_sequences WHERE board=? AND rollout_id=?");
  if (!st.ok()) return fail(Errc::io, file_.string() + ": " + st.error());
  st.bind(1, board).bind(2, rollout_id);
  switch (st.step()) {
    case SQLITE_ROW: return static_cast<std::uint64_t>(st.integer(0));
    case SQLITE_DONE: return std::uint64_t{0};
    default: return fail(Errc::io, file_.string() + ": " + st.error());
  }
}

Result<bool> Store::accept_report(const ReportRow& r) {
  std::lock_guard lock(g_mu);
  FLEET_TRY(exec("BEGIN IMMEDIATE"));
  auto done = [&]() -> Result<bool> {
    if (!FLEET_TRY(advance_unlocked(D(db_), file_, r.board, r.rollout_id, r.sequence))) return false;
    // REPLACE: a board whose agent state was wiped numbers from 1 again, in a new rollout;
    // its new report (accepted above, acknowledged to the board, which then deletes it) must
    // not be dropped for an old row of the same (board, sequence).
    Stmt st(D(db_), "INSERT OR REPLACE INTO reports (board,rollout_id,sequence,phase,running_release,message,checks_json,"
                    "at_ms,throughput_json) VALUES (?,?,?,?,?,?,?,?,?)");
    st.bind(1, r.board).bind(2, r.rollout_id).bind(3, static_cast<std::int64_t>(r.sequence)).bind(4, r.phase);
    st.bind(5, r.running_release).bind(6, r.message).bind(7, r.checks_json).bind(8, r.at_ms);
    st.bind(9, r.throughput_json);
    if (st.step() != SQLITE_DONE) return fail(Errc::io, file_.string() + ": " + st.error());
    return true;
  }();
  if (!done) {
    if (auto undone = exec("ROLLBACK"); !undone) {
      return fail(Errc::io, done.error().message + "; the rollback failed too: " + undone.error().message);
    }
    return done;
  }
  FLEET_TRY(commit_or_roll_back());
  return done;
}

Result<void> Store::put_model(const ModelRow& m) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), "INSERT OR REPLACE INTO models (board,path,name,sha256,size,push_id,at_ms) VALUES (?,?,?,?,?,?,?)");
  if (!st.ok()) return fail(Errc::io, file_.string() + ": " + st.error());
  st.bind(1, m.board).bind(2, m.path).bind(3, m.name).bind(4, m.sha256).bind(5, m.size).bind(6, m.push_id);
  st.bind(7, m.at_ms);
  if (st.step() != SQLITE_DONE) return fail(Errc::io, file_.string() + ": " + st.error());
  return {};
}

Result<std::vector<ModelRow>> Store::models() {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), "SELECT board,path,name,sha256,size,push_id,at_ms FROM models ORDER BY name, board");
  if (!st.ok()) return fail(Errc::io, file_.string() + ": " + st.error());
  std::vector<ModelRow> out;
  while (st.step() == SQLITE_ROW) {
    out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.integer(4), st.text(5), st.integer(6)});
  }
  return out;
}

Result<std::vector<ReportRow>> Store::reports(const std::string& board, int limit) {
  std::lock_guard lock(g_mu);
  Stmt st(D(db_), "SELECT board,rollout_id,sequence,phase,running_release,message,checks_json,at_ms,"
                  "throughput_json FROM reports WHERE board=? ORDER BY sequence DESC LIMIT ?");
  st.bind(1, board).bind(2, std::int64_t{limit});
  std::vector<ReportRow> out;
  while (st.step() == SQLITE_ROW) {
    out.push_back({st.text(0), st.text(1), static_cast<std::uint64_t>(st.integer(2)), st.text(3), st.text(4),
                   st.text(5), st.text(6), st.integer(7), st.text(8)});
  }
  return out;
}

}  // namespace fleet::store
