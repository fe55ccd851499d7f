#include "controller/cli/bundle_cmd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <ostream>

#include "common/args.hpp"
#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/signing.hpp"

namespace fleet::controller::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;

const args::Option k_json{"json", args::Takes::nothing, "", "print JSON for programs instead of text"};
const args::Option k_help{"help", args::Takes::nothing, "", "show this help"};

// A new file with `mode` from the start (a private key is never readable by others, not even
// for a moment); an existing file is not replaced.
Result<void> write_new_file(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return fail(errno == EEXIST ? Errc::invalid_input : Errc::io,
                path.string() + ": " + (errno == EEXIST ? std::string("exists; not replaced") : std::strerror(errno)));
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      return fail(Errc::io, "cannot write " + path.string() + ": " + why);
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return fail(Errc::io, "cannot write " + path.string() + ": " + std::strerror(errno));
  return {};
}

int failed(const char* cmd, const Error& e, std::ostream& err) {
  err << "fleetctl bundle " << cmd << ": " << e.message << "\n";
  return e.code == Errc::invalid_input || e.code == Errc::not_found || e.code == Errc::parse ? k_exit_usage
                                                                                               : k_exit_failed;
}

int keygen(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"out", args::Takes::value, "FILE", "the private key (mode 0600); the public one goes to FILE.pub (required)"},
      k_json, k_help};
  int code = 0;
  auto a = args::parse_command(
      argv, options,
      {"fleetctl", "fleetctl bundle keygen --out FILE [--json]",
       "Makes an Ed25519 key pair for signing kernel bundles: FILE (PKCS#8 PEM, mode 0600, keep it\n"
       "off the boards and out of the repository) and FILE.pub (give it to the boards with\n"
       "'fleetctl rollout --trust-key FILE.pub'). Existing files are never replaced. The same keys\n"
       "come from 'openssl genpkey -algorithm ed25519' and 'openssl pkey -pubout'."},
      out, err, code);
  if (!a) return code;
  auto file = a->value("out");
  if (!file) {
    err << "fleetctl bundle keygen: --out FILE is required\n";
    return k_exit_usage;
  }
  const std::filesystem::path priv = *file, pub = *file + ".pub";
  if (std::filesystem::exists(pub)) return failed("keygen", Error{Errc::invalid_input, pub.string() + ": exists; not replaced"}, err);
  auto keys = signing::generate();
  if (!keys) return failed("keygen", keys.error(), err);
  if (auto w = write_new_file(priv, keys->private_pem, 0600); !w) return failed("keygen", w.error(), err);
  if (auto w = write_new_file(pub, keys->public_pem, 0644); !w) {
    std::filesystem::remove(priv);
    return failed("keygen", w.error(), err);
  }
  if (a->flag("json")) {
    out << nlohmann::json{{"key_id", keys->id}, {"private", priv.string()}, {"public", pub.string()}}.dump() << "\n";
  } else {
    out << "key " << keys->id << ": private " << priv.string() << " (mode 0600), public " << pub.string() << "\n";
  }
  return k_exit_ok;
}

int sign_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"key", args::Takes::value, "FILE", "the private key (from fleetctl bundle keygen; required)"}, k_json,
      k_help};
  int code = 0;
  auto a = args::parse_command(
      argv, options,
      {"fleetctl", "fleetctl bundle sign BUNDLE --key FILE [--json]",
       "Checks every file of the bundle against its manifest, then signs manifest.json (which lists\n"
       "every file's sha256) and writes BUNDLE/manifest.sig. Boards that trust the key install the\n"
       "bundle; boards that trust keys but not this one refuse it before writing anything.",
       1},
      out, err, code);
  if (!a) return code;
  if (a->positional.size() != 1 || !a->value("key")) {
    err << "fleetctl bundle sign: give one BUNDLE and --key FILE\n";
    return k_exit_usage;
  }
  const std::string& dir = a->positional[0];
  auto pem = fs::read_file(*a->value("key"));
  if (!pem) return failed("sign", pem.error(), err);
  auto id = bundle::sign(dir, *pem, *a->value("key"));
  if (!id) return failed("sign", id.error(), err);
  if (a->flag("json")) {
    out << nlohmann::json{{"bundle", dir}, {"key_id", *id}}.dump() << "\n";
  } else {
    out << "bundle " << dir << " signed by key " << *id << " (" << bundle::k_signature << ")\n";
  }
  return k_exit_ok;
}

int verify_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"trust-key", args::Takes::value, "FILE", "require a signature by this public key"}, k_json, k_help};
  int code = 0;
  auto a = args::parse_command(
      argv, options,
      {"fleetctl", "fleetctl bundle verify BUNDLE [--trust-key FILE] [--json]",
       "Checks every file of the bundle against its manifest (size and sha256, nothing missing,\n"
       "nothing extra) and shows who signed it. With --trust-key the signature must be that key's\n"
       "and must verify, as a board that trusts the key would require. Exit 0 good, 1 not.",
       1},
      out, err, code);
  if (!a) return code;
  if (a->positional.size() != 1) {
    err << "fleetctl bundle verify: give one BUNDLE\n";
    return k_exit_usage;
  }
  const std::filesystem::path dir = a->positional[0];
  auto m = bundle::verify(dir);
  if (!m) return failed("verify", m.error(), err);
  std::string signer;
  if (auto trust_file = a->value("trust-key")) {
    auto key = signing::read_public(*trust_file);
    if (!key) return failed("verify", key.error(), err);
    auto s = bundle::check_signature(dir, {*key});
    if (!s) return failed("verify", s.error(), err);
    signer = *s;
  } else if (auto text = fs::read_file(dir / bundle::k_signature)) {
    auto sig = bundle::parse_signature(*text, (dir / bundle::k_signature).string());
    if (!sig) return failed("verify", sig.error(), err);
    signer = sig->key_id + " (not checked: no --trust-key)";
  }
  if (a->flag("json")) {
    out << nlohmann::json{{"bundle", dir.string()}, {"kernel_release", m->kernel_release}, {"files", m->files.size()},
                          {"signed", !signer.empty()}, {"signature_checked", a->value("trust-key").has_value()},
                          {"key_id", signer.substr(0, signer.find(' '))}}
               .dump()
        << "\n";
  } else {
    out << "bundle " << dir.string() << ": kernel " << m->kernel_release << ", " << m->files.size()
        << " files match the manifest; " << (signer.empty() ? "not signed" : "signed by key " + signer) << "\n";
  }
  return k_exit_ok;
}

}  // namespace

int bundle_command(const std::string& sub, const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  if (sub == "keygen") return keygen(argv, out, err);
  if (sub == "sign") return sign_cmd(argv, out, err);
  if (sub == "verify") return verify_cmd(argv, out, err);
  const char* usage =
      "usage: fleetctl bundle keygen|sign|verify [OPTIONS]\n\n"
      "  keygen --out FILE                 make an Ed25519 key pair for signing bundles\n"
      "  sign BUNDLE --key FILE            sign the bundle's manifest (writes BUNDLE/manifest.sig)\n"
      "  verify BUNDLE [--trust-key FILE]  check the files and who signed them\n\n"
      "Run 'fleetctl bundle SUBCOMMAND --help' for its options.\n";
  if (sub == "--help" || sub == "-h" || sub == "help") {
    out << usage;
    return k_exit_ok;
  }
  err << "fleetctl bundle: unknown subcommand '" << sub << "'\n\n" << usage;
  return k_exit_usage;
}

}  // namespace fleet::controller::cli
