#include "node-agent/model/swarm.hpp"

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/hex.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include <charconv>
#include <iterator>

namespace fleet::model {
namespace {

std::string hex_of(const lt::info_hash_t& ih) {
  const auto best = ih.get_best();
  return lt::aux::to_hex(best);
}

Torrent describe(const lt::torrent_info& ti, std::string bytes) {
  Torrent t;
  t.bytes = std::move(bytes);
  t.info_hash = hex_of(ti.info_hashes());
  t.name = ti.name();
  t.size = 0;
  for (const auto i : ti.files().file_range()) {
    if (!ti.files().pad_file_at(i)) t.size += ti.files().file_size(i);  // not a v2 tail pad
  }
  t.piece_length = ti.piece_length();
  t.pieces = ti.num_pieces();
  return t;
}

std::string endpoint_text(const lt::tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

}  // namespace

int piece_length_for(std::int64_t size) {
  int piece = 256 * 1024;
  while (piece < 8 * 1024 * 1024 && static_cast<std::int64_t>(piece) * 512 < size) piece *= 2;
  return piece;
}

Result<std::pair<std::string, int>> split_endpoint(const std::string& text, const std::string& what) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return fail(Errc::invalid_input, what + ": '" + text + "' is not ADDRESS:PORT");
  }
  std::string host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data() + colon + 1, end, port);
  if (ec != std::errc{} || p != end || port < 0 || port > 65535) {
    return fail(Errc::invalid_input, what + ": '" + text + "' has no port number (0..65535) after its last ':'");
  }
  boost::system::error_code bad;
  lt::make_address(host, bad);
  if (bad) return fail(Errc::invalid_input, what + ": '" + host + "' is not an IP address");
  return std::pair{host, port};
}

Result<Torrent> make_torrent(const std::filesystem::path& file, const std::string& root_cert_pem,
                             const std::function<void(int, int)>& progress) {
  std::error_code fec;
  if (!std::filesystem::is_regular_file(file, fec)) return fail(Errc::not_found, file.string() + ": not a regular file");
  if (root_cert_pem.empty()) return fail(Errc::invalid_input, "a push's torrent needs its CA certificate");
  lt::file_storage fs;
  lt::add_files(fs, std::filesystem::absolute(file).string());
  if (fs.num_files() != 1) return fail(Errc::invalid_input, file.string() + ": expected one file");
  // v2 only: pieces are checked by SHA-256 (and the A76 hashes it in hardware); no SHA-1.
  lt::create_torrent ct(fs, piece_length_for(fs.total_size()), lt::create_torrent::v2_only);
  ct.set_creator("fleetctl");
  ct.set_root_cert(root_cert_pem);
  ct.set_priv(true);
  boost::system::error_code ec;
  const int pieces = ct.num_pieces();
  lt::set_piece_hashes(ct, std::filesystem::absolute(file).parent_path().string(),
                       [&](lt::piece_index_t i) {
                         if (progress) progress(static_cast<int>(i) + 1, pieces);
                       },
                       ec);
  if (ec) return fail(Errc::io, file.string() + ": hashing its pieces: " + ec.message());
  std::string bytes;
  lt::bencode(std::back_inserter(bytes), ct.generate());
  lt::torrent_info ti(lt::span<const char>(bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())), ec, lt::from_span);
  if (ec) return fail(Errc::parse, file.string() + ": the torrent made of it does not load: " + ec.message());
  return describe(ti, std::move(bytes));
}

Result<Torrent> read_torrent(const std::string& bytes, const std::string& source) {
  boost::system::error_code ec;
  lt::torrent_info ti(lt::span<const char>(bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())), ec, lt::from_span);
  if (ec) return fail(Errc::parse, source + ": not a torrent: " + ec.message());
  if (ti.ssl_cert().empty()) {
    return fail(Errc::invalid_input, source + ": the torrent carries no CA certificate: anyone could join its swarm");
  }
  // A v2 torrent whose file is not a whole number of pieces gets a pad file after it when it is
  // loaded (never written to disk): only real files count.
  int files = 0;
  std::string name;
  for (const auto i : ti.files().file_range()) {
    if (ti.files().pad_file_at(i)) continue;
    ++files;
    name = ti.files().file_path(i);
  }
  if (files != 1) {
    return fail(Errc::invalid_input, source + ": the torrent has " + std::to_string(files) + " files, not one");
  }
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return fail(Errc::invalid_input, source + ": the torrent's name '" + name + "' is not a file name");
  }
  return describe(ti, bytes);
}

struct Swarm::Impl {
  SwarmOptions options;
  lt::session session;
  lt::torrent_handle handle;
  std::vector<lt::tcp::endpoint> to_dial;
  bool has_cert = false;
  bool want_move = false;
  Progress last;
  std::string error;

  explicit Impl(lt::session_params params) : session(std::move(params)) {}

  void dial() {
    if (!handle.is_valid() || !has_cert) return;
    for (const auto& e : to_dial) handle.connect_peer(e);
  }
};

Swarm::Swarm() = default;
Swarm::~Swarm() = default;

Result<std::unique_ptr<Swarm>> Swarm::start(const SwarmOptions& options) {
  auto [host, port] = FLEET_TRY(split_endpoint(options.listen, "--listen"));
  if (options.cert_pem.empty() || options.key_pem.empty()) {
    return fail(Errc::invalid_input, "a swarm member needs its certificate and key from the push's CA");
  }
  if (options.upload_limit < 0 || options.download_limit < 0 || options.upload_limit > INT32_MAX ||
      options.download_limit > INT32_MAX) {
    return fail(Errc::invalid_input, "a rate limit must be 0 (none) to 2147483647 bytes/s");
  }
  lt::settings_pack p;
  const std::string listen = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                             std::to_string(port) + "s";  // "s": TLS, for SSL torrents
  p.set_str(lt::settings_pack::listen_interfaces, listen);
  p.set_bool(lt::settings_pack::enable_dht, false);
  p.set_bool(lt::settings_pack::enable_lsd, false);
  p.set_bool(lt::settings_pack::enable_upnp, false);
  p.set_bool(lt::settings_pack::enable_natpmp, false);
  // TCP only: uTP would bring its own congestion control, and a rack's LAN does not need it.
  p.set_bool(lt::settings_pack::enable_incoming_utp, false);
  p.set_bool(lt::settings_pack::enable_outgoing_utp, false);
  // Boards behind one address (virtual boards, a NAT) are still different peers.
  p.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
  // Inside a rack every member serves every other: no tit-for-tat choking, which exists to
  // make strangers on the Internet upload, and which here left boards idle that could serve.
  p.set_int(lt::settings_pack::unchoke_slots_limit, -1);
  // A peer that was not up yet is dialled again soon, not in a minute.
  p.set_int(lt::settings_pack::min_reconnect_time, 1);
  p.set_int(lt::settings_pack::peer_connect_timeout, 5);
  p.set_int(lt::settings_pack::upload_rate_limit, static_cast<int>(options.upload_limit));
  p.set_int(lt::settings_pack::download_rate_limit, static_cast<int>(options.download_limit));
  p.set_str(lt::settings_pack::user_agent, "fleetctl");
  const lt::alert_category_t mask =
      lt::alert_category::error | lt::alert_category::status | lt::alert_category::storage | lt::alert_category::peer;
  p.set_int(lt::settings_pack::alert_mask, static_cast<int>(static_cast<std::uint32_t>(mask)));
  lt::session_params params(std::move(p));
  std::unique_ptr<Swarm> s(new Swarm());
  s->impl_ = std::make_unique<Impl>(std::move(params));
  s->impl_->options = options;
  // Limits for every peer: none is "local" (see swarm.hpp).
  lt::ip_filter classes;
  const std::uint32_t global = 1u << static_cast<std::uint32_t>(lt::session::global_peer_class_id);
  classes.add_rule(lt::make_address("0.0.0.0"), lt::make_address("255.255.255.255"), global);
  classes.add_rule(lt::make_address("::"), lt::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), global);
  s->impl_->session.set_peer_class_filter(classes);
  // The listen socket is opened asynchronously: wait for the verdict.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    s->impl_->session.wait_for_alert(std::chrono::milliseconds(200));
    std::vector<lt::alert*> alerts;
    s->impl_->session.pop_alerts(&alerts);
    for (lt::alert* a : alerts) {
      if (auto* f = lt::alert_cast<lt::listen_failed_alert>(a)) {
        return fail(Errc::io, "cannot listen on " + options.listen + " (TLS): " + f->error.message());
      }
      if (auto* ok = lt::alert_cast<lt::listen_succeeded_alert>(a)) {
        if (ok->socket_type == lt::socket_type_t::tcp_ssl) return s;
      }
    }
  }
  return fail(Errc::timeout, "libtorrent did not open its TLS listen socket on " + options.listen + " within 10 s");
}

int Swarm::port() const { return impl_->session.ssl_listen_port(); }

Result<void> Swarm::seed(const Torrent& torrent, const std::filesystem::path& dir) {
  if (impl_->handle.is_valid()) return fail(Errc::invalid_input, "this swarm already has its torrent");
  lt::add_torrent_params atp;
  boost::system::error_code ec;
  atp.ti = std::make_shared<lt::torrent_info>(
      lt::span<const char>(torrent.bytes.data(), static_cast<std::ptrdiff_t>(torrent.bytes.size())), ec, lt::from_span);
  if (ec) return fail(Errc::parse, "the push's torrent: " + ec.message());
  atp.save_path = dir.string();
  atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
  atp.flags |= lt::torrent_flags::seed_mode;
  if (impl_->options.super_seed) atp.flags |= lt::torrent_flags::super_seeding;
  impl_->handle = impl_->session.add_torrent(std::move(atp), ec);
  if (ec) return fail(Errc::io, "cannot serve " + (dir / torrent.name).string() + ": " + ec.message());
  return {};
}

Result<void> Swarm::fetch(const Torrent& torrent, const std::filesystem::path& dir, std::pair<int, int> stripe) {
  if (impl_->handle.is_valid()) return fail(Errc::invalid_input, "this swarm already has its torrent");
  const auto [index, count] = stripe;
  if (count < 1 || index < 0 || index >= count) {
    return fail(Errc::invalid_input, "stripe " + std::to_string(index) + "/" + std::to_string(count) + ": not INDEX/COUNT with 0 <= INDEX < COUNT");
  }
  lt::add_torrent_params atp;
  boost::system::error_code ec;
  atp.ti = std::make_shared<lt::torrent_info>(
      lt::span<const char>(torrent.bytes.data(), static_cast<std::ptrdiff_t>(torrent.bytes.size())), ec, lt::from_span);
  if (ec) return fail(Errc::parse, "the push's torrent: " + ec.message());
  if (count > 1) {
    atp.piece_priorities.resize(static_cast<std::size_t>(atp.ti->num_pieces()), lt::default_priority);
    for (std::size_t p = static_cast<std::size_t>(index); p < atp.piece_priorities.size(); p += static_cast<std::size_t>(count)) {
      atp.piece_priorities[p] = lt::top_priority;
    }
  }
  atp.save_path = dir.string();
  atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
  impl_->handle = impl_->session.add_torrent(std::move(atp), ec);
  if (ec) return fail(Errc::io, "cannot fetch into " + dir.string() + ": " + ec.message());
  return {};
}

Result<void> Swarm::connect(const std::vector<std::string>& endpoints) {
  for (const auto& text : endpoints) {
    auto [host, port] = FLEET_TRY(split_endpoint(text, "peer"));
    impl_->to_dial.emplace_back(lt::make_address(host), static_cast<unsigned short>(port));
  }
  impl_->dial();
  return {};
}

void Swarm::flush() {
  if (impl_->handle.is_valid()) impl_->handle.flush_cache();
}

Result<void> Swarm::move_to(const std::filesystem::path& dir) {
  if (!impl_->handle.is_valid()) return fail(Errc::invalid_input, "no torrent to move");
  impl_->want_move = true;
  impl_->handle.move_storage(dir.string(), lt::move_flags_t::always_replace_files);
  return {};
}

Result<Progress> Swarm::poll(std::chrono::milliseconds wait) {
  auto& m = *impl_;
  m.session.wait_for_alert(wait);
  std::vector<lt::alert*> alerts;
  m.session.pop_alerts(&alerts);
  for (lt::alert* a : alerts) {
    if (auto* need = lt::alert_cast<lt::torrent_need_cert_alert>(a)) {
      need->handle.set_ssl_certificate_buffer(m.options.cert_pem, m.options.key_pem, "");
      m.has_cert = true;
      m.dial();
    } else if (auto* te = lt::alert_cast<lt::torrent_error_alert>(a)) {
      // No DH parameters are given: TLS 1.3's key exchange is ECDHE. libtorrent says so.
      if (te->filename() == std::string("[dh params]")) continue;
      m.error = std::string(te->filename()) + ": " + te->error.message();
    } else if (auto* fe = lt::alert_cast<lt::file_error_alert>(a)) {
      m.error = std::string(fe->filename()) + ": " + fe->error.message() + " (" + lt::operation_name(fe->op) + ")";
    } else if (lt::alert_cast<lt::hash_failed_alert>(a)) {
      ++m.last.hash_failures;
    } else if (lt::alert_cast<lt::peer_ban_alert>(a)) {
      ++m.last.banned;
    } else if (lt::alert_cast<lt::cache_flushed_alert>(a)) {
      m.last.flushed = true;
    } else if (lt::alert_cast<lt::storage_moved_alert>(a)) {
      m.last.moved = true;
    } else if (auto* mf = lt::alert_cast<lt::storage_moved_failed_alert>(a)) {
      m.error = "moving the file to its place: " + std::string(mf->file_path()) + ": " + mf->error.message();
    }
  }
  if (!m.error.empty()) return fail(Errc::io, m.error);
  Progress p = m.last;
  p.peers.clear();
  if (m.handle.is_valid()) {
    const lt::torrent_status st = m.handle.status();
    if (st.errc) return fail(Errc::io, st.errc.message());
    p.done = st.total_wanted_done;
    p.total = st.total_wanted;
    p.down_rate = st.download_payload_rate;
    p.up_rate = st.upload_payload_rate;
    p.uploaded = st.total_payload_upload;
    p.downloaded = st.total_payload_download;
    p.complete = st.is_seeding && st.state != lt::torrent_status::checking_files &&
                 st.state != lt::torrent_status::checking_resume_data;
    std::vector<lt::peer_info> peers;
    m.handle.get_peer_info(peers);
    for (const auto& pi : peers) {
      p.peers.push_back({endpoint_text(pi.ip), pi.progress, pi.payload_down_speed, pi.payload_up_speed});
    }
  }
  m.last.done = p.done;
  return p;
}

}  // namespace fleet::model
