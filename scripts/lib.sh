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
