#!/usr/bin/env bash
# Assembles the root filesystem template of a virtual Pi 5 board from Debian's arm64
# packages: busybox (shell and tools), openssh-server and its SFTP server (as on Raspberry
# Pi OS), and every shared library they need, found by following the ELF NEEDED entries.
# Maintainer scripts do not run (no arm64 code executes here); the few files they would
# make (users, sshd's folder) are written below. Usage: sim/rootfs.sh OUT
set -euo pipefail
out=${1:?usage: sim/rootfs.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
cache=${FLEETCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetctl}/debs
mkdir -p "$cache"
stamp="$out/.fleet-rootfs"
# The template is rebuilt whenever this script or the board's init changes.
version=$(cat "$0" "$here/board-init.sh" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ]; then
  echo "rootfs: $out is up to date"
  exit 0
fi
rm -rf "$out.partial"
mkdir -p "$out.partial"
root="$out.partial"

fetch() {  # fetch PKG: download PKG:arm64 once into the cache, unpack it into the root
  local p=$1 deb
  deb=$(ls -t "$cache/${p}_"*_arm64.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$p:arm64" >/dev/null)
    deb=$(ls -t "$cache/${p}_"*_arm64.deb | head -n1)
  fi
  dpkg-deb -x "$deb" "$root"
  echo "$p" >> "$root/.fleet-packages"
}

echo "rootfs: unpacking busybox-static, openssh-server, openssh-sftp-server, libc6 (arm64)"
for p in busybox-static openssh-server openssh-sftp-server libc6; do fetch "$p"; done

# Shared libraries: the arm64 package that ships a soname is named like the amd64 one that
# ships it on this machine (Debian's multiarch), which dpkg -S finds.
for round in 1 2 3 4 5 6; do
  missing=()
  while IFS= read -r so; do
    case "$so" in ld-linux-*) continue ;; esac  # the loader comes with libc6
    if ! find "$root/lib" "$root/usr/lib" -name "$so" 2>/dev/null | grep -q .; then missing+=("$so"); fi
  done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \) -exec sh -c 'file -b "$1" | grep -q "ELF 64-bit.*aarch64" && readelf -d "$1" 2>/dev/null' _ {} \; |
           sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u)
  [ "${#missing[@]}" -eq 0 ] && break
  pkgs=()
  for so in "${missing[@]}"; do
    p=$(dpkg -S "*/x86_64-linux-gnu/$so" 2>/dev/null | head -n1 | cut -d: -f1 || true)
    [ -n "$p" ] || { echo "rootfs: no package found for $so" >&2; exit 1; }
    pkgs+=("$p")
  done
  for p in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
    grep -qx "$p" "$root/.fleet-packages" 2>/dev/null && continue
    echo "rootfs: $p (for ${missing[*]})" | cut -c1-150
    fetch "$p"
  done
done

# Debian 12 packages still ship /lib and /bin; the loader is /lib/ld-linux-aarch64.so.1.
mkdir -p "$root"/{proc,sys,dev,run,tmp,root/.ssh,etc/ssh,var/log,var/tmp,var/empty,usr/local/bin,boot/firmware,lib/modules}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root" "$root/root/.ssh"

# busybox applets as symlinks, never over a file a package shipped.
for applet in $(qemu-aarch64-static "$root/bin/busybox" --list-full); do
  [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || { mkdir -p "$(dirname "$root/$applet")"; ln -s /bin/busybox "$root/$applet"; }
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo 'root:*:19000:0:99999:7:::' > "$root/etc/shadow"
chmod 600 "$root/etc/shadow"
echo 'hosts: files' > "$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n10.0.2.2 controller\n' > "$root/etc/hosts"
cat > "$root/etc/ssh/sshd_config" <<'SSHD'
# A virtual Pi 5 board: root logs in with a key only, SFTP as on Raspberry Pi OS.
Port 22
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
SSHD
install -m 0755 "$here/board-init.sh" "$root/sbin/fleet-init"

rm -rf "$out"
mv "$root" "$out"
echo "$version" > "$stamp"
echo "rootfs: $out ready ($(du -sh "$out" | cut -f1), $(wc -l < "$out/.fleet-packages") packages)"
