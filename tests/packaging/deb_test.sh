#!/usr/bin/env bash
# The .deb packages as a user gets them: CPack builds both from the build trees, lintian finds
# no error in either, fleetctl's installs into a scratch root with dpkg --root (it has no
# maintainer scripts to run) and works from there, and comes off again without a trace; the
# agent's holds an aarch64 static binary that runs (under qemu-user) and units for it.
# usage: deb_test.sh SOURCE_DIR HOST_TREE [AARCH64_TREE]
set -euo pipefail
src=$1 host=$2 arm=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# lintian's verdict on a package: its hints are printed, an error fails the test.
lint() {
  local out rc=0
  out=$(lintian --fail-on error --tag-display-limit 0 "$1" 2>&1) || rc=$?
  grep -v '^running with root' <<<"$out" || true
  [ $rc -eq 0 ] || fail "lintian: errors in $1"
}

(cd "$host" && cpack -G DEB -B "$work/out" >/dev/null) || fail "cpack in $host"
deb=$(ls "$work"/out/fleetctl_*_amd64.deb) || fail "no fleetctl_*_amd64.deb"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
lint "$deb"
for f in preinst postinst prerm postrm; do
  dpkg-deb --info "$deb" "$f" >/dev/null 2>&1 && fail "$deb has a $f script this test does not run"
done

root=$work/root
mkdir -p "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/info"
touch "$root/var/lib/dpkg/status"
# --force-depends: the scratch root has no libraries; the binaries use this machine's.
dpkg --root="$root" --force-depends --force-not-root -i "$deb" >/dev/null 2>&1 || fail "dpkg --root -i"
dpkg --root="$root" -s fleetctl | grep -q '^Status: install ok installed' || fail "dpkg does not list fleetctl as installed"
version=$("$root/usr/bin/fleetctl" --version)
echo "installed: $version"
[[ $version =~ ^fleetctl\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ [0-9a-f]{12}(-dirty)?\)$ ]] \
  || fail "fleetctl --version printed '$version' (want the version and a git commit)"
"$root/usr/bin/fleet-sim" --help | grep -q "usage: fleet-sim" || fail "fleet-sim --help"
# The installed fleetctl finds the profiles the package put beside it, not the source tree's.
profiles=$(env -u FLEETCTL_KERNEL_DIR "$root/usr/bin/fleetctl" kernel profiles)
grep -q rpi5 <<<"$profiles" || fail "kernel profiles from the package: $profiles"
mv "$root/usr/share/fleetctl/kernel/profiles/rpi5.yaml" "$work/rpi5.yaml"
env -u FLEETCTL_KERNEL_DIR "$root/usr/bin/fleetctl" kernel profiles 2>/dev/null | grep -q '^rpi5 ' \
  && fail "the installed fleetctl read the source tree's profiles, not its own"
mv "$work/rpi5.yaml" "$root/usr/share/fleetctl/kernel/profiles/rpi5.yaml"
man -l "$root/usr/share/man/man1/fleetctl-rollout.1.gz" 2>/dev/null | grep -q -- '--max-fail' \
  || fail "man fleetctl-rollout does not list --max-fail"
man -l "$root/usr/share/man/man1/fleetctl-serve.1.gz" 2>/dev/null | grep -q -- '--http' || fail "man fleetctl-serve"
man -l "$root/usr/share/man/man1/fleetctl-model-push.1.gz" 2>/dev/null | grep -q -- '--max-rate' || fail "man fleetctl-model-push"
grep -q '^ExecStart=/usr/bin/fleetctl serve ' "$root/lib/systemd/system/fleetctl-serve.service" || fail "the serve unit"
systemd-analyze verify "$root/lib/systemd/system/fleetctl-serve.service" 2>&1 | grep -v "/usr/bin/fleetctl" \
  | grep -i "unknown\|invalid" && fail "systemd-analyze verify found an unknown or invalid setting"
# Completion: commands from --help, options from COMMAND --help.
words=$(PATH="$root/usr/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(fleetctl ro); COMP_CWORD=1; _fleetctl fleetctl; echo "${COMPREPLY[*]}"' _ "$root/usr/share/bash-completion/completions/fleetctl")
[[ $words == *rollout* && $words == *rollback* ]] || fail "completing 'fleetctl ro' gave '$words'"
opts=$(PATH="$root/usr/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(fleetctl rollout --max); COMP_CWORD=2; _fleetctl fleetctl; echo "${COMPREPLY[*]}"' _ "$root/usr/share/bash-completion/completions/fleetctl")
[[ $opts == "--max-fail" ]] || fail "completing 'fleetctl rollout --max' gave '$opts'"
subs=$(PATH="$root/usr/bin:$PATH" bash -c 'source "$1"; COMP_WORDS=(fleetctl kernel ""); COMP_CWORD=2; _fleetctl fleetctl; echo "${COMPREPLY[*]}"' _ "$root/usr/share/bash-completion/completions/fleetctl")
[[ $subs == *build* && $subs == *diff* ]] || fail "completing 'fleetctl kernel ' gave '$subs'"

dpkg --root="$root" --force-not-root -P fleetctl >/dev/null || fail "dpkg -P"
left=$(find "$root" -mindepth 1 -not -path "$root/var/lib/dpkg*" -not -path "$root/var" -not -path "$root/var/lib" | head -5)
[ -z "$left" ] || fail "files left after purge: $left"
echo "fleetctl: lintian clean, installed, ran, completed, purged"

if [ -z "$arm" ] || [ ! -f "$arm/CPackConfig.cmake" ]; then
  echo "skipped the agent's package: no aarch64 tree (scripts/build.sh makes it)"
  exit 77
fi
(cd "$arm" && cpack -G DEB -B "$work/out-arm" >/dev/null) || fail "cpack in $arm"
adeb=$(ls "$work"/out-arm/fleet-agent_*_arm64.deb) || fail "no fleet-agent_*_arm64.deb"
echo "built $(basename "$adeb") ($(du -h "$adeb" | cut -f1))"
lint "$adeb"
dpkg-deb -x "$adeb" "$work/agent"
file "$work/agent/usr/bin/fleet-agent" | grep -q "ARM aarch64.*statically linked" || fail "the agent is not a static aarch64 binary"
qemu-aarch64-static "$work/agent/usr/bin/fleet-agent" --version | grep -q "^fleet-agent " || fail "fleet-agent --version"
grep -q '^ExecStart=/usr/bin/fleet-agent boot-check$' "$work/agent/lib/systemd/system/fleet-agent-boot-check.service" \
  || fail "the boot-check unit runs another agent"
grep -q '^ExecStart=/usr/bin/fleet-agent send-reports$' "$work/agent/lib/systemd/system/fleet-agent-reports.service" \
  || fail "the reports unit"
[ -z "$(dpkg-deb -f "$adeb" Depends)" ] || fail "the static agent depends on something: $(dpkg-deb -f "$adeb" Depends)"
dpkg-deb -c "$adeb" | grep -q "fleet-model" && fail "fleet-agent carries fleet-model (it has its own package)"

# fleet-model: dynamic (Debian's libtorrent has no static library), in its own package that
# depends on what it links, running with the system's libraries alone (no build RUNPATH).
mdeb=$(ls "$work"/out-arm/fleet-model_*_arm64.deb) || fail "no fleet-model_*_arm64.deb"
echo "built $(basename "$mdeb") ($(du -h "$mdeb" | cut -f1))"
lint "$mdeb"
dpkg-deb -x "$mdeb" "$work/model"
fm="$work/model/usr/bin/fleet-model"
file "$fm" | grep -q "ARM aarch64.*dynamically linked" || fail "fleet-model is not a dynamic aarch64 binary: $(file "$fm")"
if readelf -d "$fm" | grep -q "RUNPATH\|RPATH"; then fail "the packaged fleet-model keeps its build RUNPATH"; fi
for dep in libtorrent-rasterbar2.0 libssl3 libstdc++6 libc6; do
  dpkg-deb -f "$mdeb" Depends | grep -q "$dep" || fail "fleet-model does not depend on $dep"
done
# Every library it needs is one a named package holds (readelf's NEEDED against the Depends).
for lib in $(readelf -d "$fm" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
  case $lib in
    libtorrent-rasterbar.so.*) pkg=libtorrent-rasterbar2.0 ;; libssl.so.3|libcrypto.so.3) pkg=libssl3 ;;
    libstdc++.so.*) pkg=libstdc++6 ;; libgcc_s.so.*) pkg=libgcc-s1 ;; libc.so.*|libm.so.*|ld-linux-*) pkg=libc6 ;;
    *) fail "fleet-model needs $lib, which no Depends names" ;;
  esac
  dpkg-deb -f "$mdeb" Depends | grep -q "$pkg" || fail "fleet-model needs $lib but does not depend on $pkg"
done
qemu-aarch64-static "$fm" --version | grep -q "^fleet-model $(qemu-aarch64-static "$work/agent/usr/bin/fleet-agent" --version | awk '{print $2}') " \
  || fail "fleet-model --version is not the agent's version"
[ -f "$work/model/usr/share/man/man1/fleet-model.1.gz" ] || fail "no fleet-model man page"
[ -f "$work/model/usr/share/doc/fleet-model/copyright" ] || fail "no fleet-model copyright"
echo "fleet-agent: lintian clean, static aarch64, runs, units for /usr/bin/fleet-agent; fleet-model: lintian clean, dynamic aarch64, its libraries depended on, runs"
