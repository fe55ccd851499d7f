#!/bin/sh
# /sbin/fleet-init: PID 1 of a virtual Pi 5 board (init=/sbin/fleet-init). Raspberry Pi OS
# runs systemd; a board here needs only what the update flow touches: the file systems,
# the network (ip=dhcp on the kernel command line), fleet-agent boot-check, sshd.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/sshd
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/sshd
chmod 0755 /run/sshd
[ -f /etc/hostname ] && hostname "$(cat /etc/hostname)"
ip link set lo up
# The firmware emulator's watchdog waits for this line: the kernel came up and runs init.
echo "fleet-init: up $(uname -r)"
if [ -x /usr/local/bin/fleet-agent ]; then
  /usr/local/bin/fleet-agent boot-check || echo "fleet-init: boot-check failed"
  # Reports go out beside the boot, never in its way.
  ( /usr/local/bin/fleet-agent send-reports >/var/log/fleet-agent-reports.log 2>&1 & )
fi
/usr/sbin/sshd -e 2>>/var/log/sshd.log || echo "fleet-init: sshd did not start"
# sshd returns once it has daemonised, which OpenSSH does before it binds port 22: under
# TCG the first connection could arrive before the listener and be reset. "ready" means
# port 22 is listening (state 0A in /proc/net/tcp or tcp6); at most 30 s.
n=0
while [ $n -lt 300 ] && ! grep -qs ':0016 [0-9A-F]*:[0-9A-F]* 0A ' /proc/net/tcp /proc/net/tcp6; do
  sleep 0.1
  n=$((n + 1))
done
[ $n -lt 300 ] || echo "fleet-init: sshd is not listening on port 22 after 30 s"
echo "fleet-init: ready"
while true; do sleep 3600; done
