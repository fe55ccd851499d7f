#!/usr/bin/env bash
# Runs every ```sh block of README.md, in order, in one bash from the source folder, so a
# README command that stops working fails the build. Blocks marked ```shell need a Pi 5 or
# the network and are skipped; so is the line running scripts/test.sh (it is what runs
# this). Before it: the virtual rack build/rack is stopped and removed (the README's session
# makes it afresh), and the state database is a temporary file.
set -euo pipefail
src=${1:?usage: readme_test.sh SOURCE_DIR}
cd "$src"
work=$(mktemp -d)
trap 'build/host/sim/fleet-sim rack down --rack build/rack >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export FLEETCTL_STATE=$work/fleet.db
export CI=1  # plain progress lines, no redrawn tables

# The blocks, each preceded by a marker naming its line in the README.
awk '
  /^```sh[[:space:]]*$/ { inside = 1; printf "echo \"== README.md:%d\"\n", NR + 1; next }
  /^```/ && inside      { inside = 0; next }
  inside && /scripts\/test\.sh/ { print "# skipped: " $0; next }
  inside                { print }
' README.md > "$work/readme.sh"
blocks=$(grep -c '^echo "== README.md:' "$work/readme.sh" || true)
[ "$blocks" -ge 5 ] || { echo "FAIL: only $blocks sh blocks found in README.md"; exit 1; }
echo "readme_test: $blocks blocks"

build/host/sim/fleet-sim rack down --rack build/rack >/dev/null 2>&1 || true
rm -rf build/rack
set +e
bash -euo pipefail "$work/readme.sh"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "FAIL: a README command exited $rc; the last '== README.md:LINE' above names its block"
  exit 1
fi
echo "readme_test: every sh block of README.md ran"
