#!/usr/bin/env bash
# The product command (README): installs isthmus from this checkout and runs it.
# Arguments go to the `isthmus` program.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_root
apt_need ca-certificates iproute2 util-linux iptables
pnpm_need
workspace_build
exec pnpm --silent isthmus "${@:---help}"
