#!/usr/bin/env bash
# The product command (README): installs isthmus from this checkout and runs it.
# Arguments go to the `isthmus` program.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_root
node_need
apt_need ca-certificates iproute2 util-linux iptables golang-go
pnpm_need
workspace_build
[ $# -gt 0 ] || set -- serve
# node itself, not through pnpm: pnpm does not pass SIGTERM on, and the daemon stops cleanly on it
exec node packages/cli/dist/bin/isthmus.js "$@"
