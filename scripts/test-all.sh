#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test in one node:test
# run with one closing summary; exits non-zero on any failure. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_root
apt_need ca-certificates iproute2 util-linux iptables docker.io busybox-static systemd \
  podman containernetworking-plugins golang-go golang-github-appc-cni-dev
pnpm_need
workspace_build
pnpm --silent exec tsc -p tsconfig.tests.json >&2

# One dockerd for the whole run, unless one already answers; stopped by PID at the end.
dockerd_need

status=0
node scripts/test.mjs "$@" || status=$?
exit $status
