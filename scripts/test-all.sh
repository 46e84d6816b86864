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

# Lint and format check before the tests: one line each when clean; on findings, the first of them
# and their count. Either failing fails the run, after the tests have run too.
status=0
check() { # check NAME COMMAND...: run COMMAND quietly, summarise its result
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "$name: clean"
  else
    echo "$name: FAILED; the first 20 of $(printf '%s\n' "$out" | grep -c .) lines:"
    printf '%s\n' "$out" | grep . | head -20 | sed 's/^/  /'
    status=1
  fi
}
check lint pnpm --silent exec eslint --max-warnings 0 --format unix .
check format pnpm --silent exec prettier --list-different .

# One dockerd for the whole run, unless one already answers; stopped by PID at the end.
dockerd_need

node scripts/test.mjs "$@" || status=$?
exit $status
