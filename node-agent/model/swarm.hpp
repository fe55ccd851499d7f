#pragma once
// One peer-to-peer transfer of one file (`fleetctl model push`), on libtorrent: Debian's
// libtorrent-rasterbar 2.0, the engine of qBittorrent and Deluge, not a protocol of ours.
//
// A push is an SSL torrent. Its info dictionary carries the certificate of a CA made for
// that push alone, so it is part of the info-hash; a peer takes part only with a
// certificate that CA signed, for the torrent's name (libtorrent checks both, both ways,
// in the TLS handshake). Nothing else finds the swarm: no DHT, no local service discovery,
// no UPnP or NAT-PMP, no tracker; each member is told the others' addresses and dials them.
// Pieces are checked by SHA-256 (a v2 torrent: a Merkle tree over 16 KiB blocks), so a
// piece a peer corrupted is found, fetched again elsewhere, and that peer banned
// (libtorrent's smart ban).
//
// Rate limits apply to every peer: libtorrent exempts peers on a local network from the
// session's limits by default, and inside a rack every peer is local, so the session's
// peer class filter puts all addresses in the global class.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace fleet::model {

// A .torrent made for one push.
struct Torrent {
  std::string bytes;      // bencoded
  std::string info_hash;  // hex (the v2 SHA-256 info-hash, truncated as libtorrent shows it)
  std::string name;       // the file's name, and the name peers' certificates must carry
  std::int64_t size = 0;
  int piece_length = 0;
  int pieces = 0;
};

// The piece length for a file of `size` bytes: a power of two from 256 KiB to 8 MiB, about
// 512 pieces or fewer. Big pieces: fewer hashes and messages, and a seed that hands out each
// piece once (super seeding) waits less between pieces. Pure.
int piece_length_for(std::int64_t size);

// Hashes `file` into a v2 torrent whose info carries `root_cert_pem`. `progress(done, total)`
// is told after each piece (may be empty).
Result<Torrent> make_torrent(const std::filesystem::path& file, const std::string& root_cert_pem,
                             const std::function<void(int, int)>& progress = {});

// Reads a .torrent made by make_torrent: refuses one without a root certificate (it would
// let anyone join) or with more than one file. `source` names it in errors.
Result<Torrent> read_torrent(const std::string& bytes, const std::string& source);

struct SwarmOptions {
  std::string listen = "0.0.0.0:0";  // ADDRESS:PORT, TLS (0: any free port)
  std::int64_t upload_limit = 0;     // bytes/s, 0: none
  std::int64_t download_limit = 0;   // bytes/s, 0: none
  std::string cert_pem;              // signed by the torrent's root certificate, CN the torrent's name
  std::string key_pem;
  // seed(): offer each peer only pieces no other peer was given yet (BitTorrent's super
  // seeding), so the first seed's upload sends each piece about once and the peers trade
  // the rest. For the controller, whose uplink is the bottleneck.
  bool super_seed = false;
};

struct PeerView {
  std::string endpoint;  // ADDRESS:PORT as seen from here
  double progress = 0;   // of the file, 0..1
  std::int64_t down_rate = 0, up_rate = 0;
};

struct Progress {
  std::int64_t done = 0, total = 0;  // verified bytes
  std::int64_t down_rate = 0, up_rate = 0;  // bytes/s of payload
  std::int64_t uploaded = 0, downloaded = 0;  // payload since the start
  int hash_failures = 0;  // pieces that failed their hash (fetched again)
  int banned = 0;         // peers banned for sending them
  bool complete = false;  // every piece verified and on disk
  bool flushed = false;   // flush() finished: every piece written to the file
  bool moved = false;     // move_to() finished
  std::vector<PeerView> peers;
};

class Swarm {
 public:
  // A session listening on options.listen, limits set. The torrent is added by seed() or
  // fetch(), once.
  static Result<std::unique_ptr<Swarm>> start(const SwarmOptions& options);
  ~Swarm();
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  // The TLS port it listens on (after start: the real one if options.listen said 0).
  int port() const;

  // Serves `torrent` from `dir` (dir/name is the whole file, already hashed by
  // make_torrent: not read again now).
  Result<void> seed(const Torrent& torrent, const std::filesystem::path& dir);
  // Fetches `torrent` into `dir` (dir/name). Pieces already in a file there are checked
  // and kept: a cut-off transfer continues from them.
  //
  // `stripe` (index, count of the boards fetching): pieces index, index+count, ... come first.
  // Each board then asks the controller for its own stripe before anything else, so the
  // controller's uplink sends each piece about once, and the boards trade the stripes.
  Result<void> fetch(const Torrent& torrent, const std::filesystem::path& dir, std::pair<int, int> stripe = {0, 1});
  // Peers to dial, ADDRESS:PORT each (dialled once the certificate is in place; again if
  // they were not up yet).
  Result<void> connect(const std::vector<std::string>& endpoints);
  // Handles what libtorrent said since the last call, waiting up to `wait` for it; an
  // error of the transfer (a disk full, a refused certificate) is returned.
  Result<Progress> poll(std::chrono::milliseconds wait);
  // Moves the complete file to `dir` (rename(2) on one file system; replaces a file of the
  // same name); poll() says when with `moved`.
  Result<void> move_to(const std::filesystem::path& dir);
  // Writes every piece in libtorrent's cache to the file; poll() says when with `flushed`.
  void flush();

 private:
  Swarm();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "ADDRESS:PORT" or "[V6]:PORT" to its parts; errors name `what`.
Result<std::pair<std::string, int>> split_endpoint(const std::string& text, const std::string& what);

}  // namespace fleet::model
