#!/usr/bin/env bash
# The test command (README): installs what the tests need, then runs every test in one node:test
# run with one closing summary; exits non-zero on any failure. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_root
apt_need ca-certificates iproute2 util-linux iptables docker.io busybox-static systemd \
  podman containernetworking-plugins golang-go golang-github-appc-cni-dev etcd-server etcd-client
node_need_for_tests
pnpm_need
workspace_build
pnpm --silent exec tsc -p tsconfig.tests.json >&2

# Lint and format check before the tests: one line each when clean; on findings, the first 10 lines
# of the report and its last (ESLint's count). Either failing fails the run, after the tests have run.
status=0
check() { # check NAME COMMAND...: run COMMAND quietly, summarise its result
  local name=$1 out lines
  shift
  if out=$("$@" 2>&1); then
    echo "$name: clean"
    return 0
  fi
  status=1
  out=$(printf '%s\n' "$out" | grep . || true)
  lines=$(printf '%s\n' "$out" | grep -c . || true)
  echo "$name: FAILED ($lines lines of findings; pnpm $name shows them all)"
  printf '%s\n' "$out" | head -10 | sed 's/^/  /'
  if [ "$lines" -gt 10 ]; then echo "  …"; printf '%s\n' "$out" | tail -1 | sed 's/^/  /'; fi
}
check lint pnpm --silent exec eslint --max-warnings 0 .
check format:check pnpm --silent exec prettier --list-different .

# One dockerd for the whole run, unless one already answers; stopped by PID at the end.
dockerd_need

node scripts/test.mjs "$@" || status=$?
exit $status
