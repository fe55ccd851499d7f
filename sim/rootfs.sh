#!/usr/bin/env bash
# Assembles the root filesystem template of a virtual Pi 5 board from Debian's arm64
# packages, as Raspberry Pi OS (Debian 12) runs: systemd as init with udev, openssh-server and
# its SFTP server, the file system checkers the boot runs (dosfstools for bootfs, e2fsprogs
# for the root), busybox for a shell and small tools, and every shared library they need,
# found by following the ELF NEEDED entries.
#
# Why `dpkg-deb -x` and not mmdebstrap: mmdebstrap runs the packages' maintainer scripts,
# which are arm64 code; on an amd64 machine that needs qemu-user registered with binfmt_misc,
# a change to the machine's kernel settings that setup and tests must not make (and a
# container often cannot). Nothing arm64 runs here; the few things the maintainer scripts
# would do (users, enabled units, sshd's folder) are written below, and systemd-sysusers
# adds its own users at the first boot. Usage: sim/rootfs.sh OUT
set -euo pipefail
out=${1:?usage: sim/rootfs.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
cache=${FLEETCTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetctl}/debs
mkdir -p "$cache"
stamp="$out/.fleet-rootfs"
# The template is rebuilt whenever this script or the board's init changes.
version=$(cat "$0" | sha256sum | cut -c1-16)
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

# systemd's own libraries are named here: they sit in a private folder (libsystemd-shared) or
# their amd64 twin may be missing on this machine, so the soname search below cannot find them.
# libstdc++6 and libgcc-s1: every Raspberry Pi OS has them (apt itself is C++), and fleet-model,
# the boards' side of `fleetctl model push`, links them through libtorrent.
base=(busybox-static libc6 systemd systemd-sysv libsystemd-shared libsystemd0 udev libudev1 mount util-linux
      openssh-server openssh-sftp-server dosfstools e2fsprogs kmod libstdc++6 libgcc-s1)
echo "rootfs: unpacking ${base[*]} (arm64)"
for p in "${base[@]}"; do fetch "$p"; done

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
    # Not installed here: Debian names most library packages after the soname (libfoo.so.3 -> libfoo3).
    if [ -z "$p" ]; then
      guess=$(echo "$so" | sed -E 's/\.so\.([0-9]+).*/\1/; s/\.so$//' | tr 'A-Z_' 'a-z-')
      for cand in "$guess" "${guess%[0-9]*}-${guess##*[!0-9]}"; do
        if apt-cache show "$cand:arm64" >/dev/null 2>&1; then p=$cand; break; fi
      done
    fi
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

# Users and groups the packages' scripts would add; systemd-sysusers adds its own at boot.
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
Subsystem sftp /usr/lib/openssh/sftp-server
SSHD

# The SD card's layout, as Raspberry Pi OS's fstab has it (labels instead of PARTUUIDs: the
# virtual disks have no partition table). bootfs is checked at every boot (pass 2), so a FAT
# left inconsistent by a power cut is repaired by fsck.vfat -a before anything reads it.
cat > "$root/etc/fstab" <<'FSTAB'
proc            /proc           proc    defaults          0       0
LABEL=bootfs    /boot/firmware  vfat    defaults          0       2
LABEL=rootfs    /               ext4    defaults,noatime  0       1
FSTAB

sd=$root/etc/systemd/system
mkdir -p "$sd/multi-user.target.wants" "$sd/sysinit.target.wants" "$root/etc/systemd/system.conf.d"
ln -sf /lib/systemd/system/multi-user.target "$sd/default.target"
ln -sf /lib/systemd/system/ssh.service "$sd/multi-user.target.wants/ssh.service"
# No login prompt on the serial console (nothing reads it), no logind (it needs D-Bus, which
# a board does not run) nor Debian's getty-static (its stand-in for a board without D-Bus),
# no first-boot questions on a console nobody answers.
for unit in serial-getty@.service getty@.service getty-static.service systemd-logind.service systemd-firstboot.service; do
  ln -sf /dev/null "$sd/$unit"
done
# The board's watchdog: systemd opens /dev/watchdog0 (the i6300esb; the BCM2712's on a Pi with
# dtparam=watchdog=on) and pets it every 15 s; a board whose PID 1 hangs is reset after 30 s.
cat > "$root/etc/systemd/system.conf.d/fleet-watchdog.conf" <<'WATCHDOG'
[Manager]
RuntimeWatchdogSec=30s
WATCHDOG

# The firmware emulator's cues on the console (sim/board.hpp): userland runs, its watchdog
# armed; then sshd listens (ssh.service is Type=notify) and the agent's boot-check is done.
cat > "$sd/fleet-board-up.service" <<'UP'
[Unit]
Description=fleet-sim: tell the firmware emulator that userland runs
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "fleet-board: up $(uname -r)" > /dev/console'

[Install]
WantedBy=sysinit.target
UP
ln -sf ../fleet-board-up.service "$sd/sysinit.target.wants/fleet-board-up.service"
cat > "$sd/fleet-board-ready.service" <<'READY'
[Unit]
Description=fleet-sim: tell the firmware emulator that sshd listens
Wants=ssh.service
After=ssh.service fleet-agent-boot-check.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "fleet-board: ready" > /dev/console'

[Install]
WantedBy=multi-user.target
READY
ln -sf ../fleet-board-ready.service "$sd/multi-user.target.wants/fleet-board-ready.service"

rm -rf "$out"
mv "$root" "$out"
echo "$version" > "$stamp"
echo "rootfs: $out ready ($(du -sh "$out" | cut -f1), $(wc -l < "$out/.fleet-packages") packages)"
