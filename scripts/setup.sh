#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine for claude-vm: system packages, a running Docker engine,
# npm dependencies, the compiled CLI and the workspace image. Safe to run again; it skips what is done.
#   --system-only   only packages and dockerd (what CI needs before `npm test`)
set -euo pipefail
cd "$(dirname "$0")/.."
system_only=0
[ "${1:-}" = "--system-only" ] && system_only=1

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# openssh-server: the ssh provider is tested against a second dockerd behind a real sshd.
# postgresql: the tests run the PostgreSQL state store against a throwaway server of their own (scripts/test-postgres.mjs).
packages=(docker.io debootstrap git tmux ca-certificates postgresql openssh-client openssh-server rsync unison chromium)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: missing system packages: ${missing[*]}" >&2
    echo "hint: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  step "Installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: no Docker engine answers." >&2
    echo "hint: sudo systemctl start docker (or add yourself to the docker group and log in again)" >&2
    exit 1
  fi
  step "Starting dockerd"
  (systemctl start docker 2>/dev/null) || (nohup dockerd >/var/log/claude-vm-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "error: dockerd did not start; see /var/log/claude-vm-dockerd.log" >&2; exit 1; }
fi
[ $system_only = 1 ] && exit 0

step "Installing npm dependencies"
npm ci --no-audit --no-fund
step "Compiling"
npm run build
step "Building the workspace image (offline-capable; a cache hit is instant)"
node bin/claude-vm.js image build --offline
step "Ready. Try: npx claude-vm workspace up /path/to/your/project"
