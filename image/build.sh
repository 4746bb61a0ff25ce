#!/usr/bin/env bash
# Builds the workspace image. `claude-vm image build` calls this.
#   bash image/build.sh [--offline] [--tag T] [--agents "claude codex …"] [--ca-bundle FILE] [--force]
# Without --offline: a plain `docker build` of image/Dockerfile (needs a registry for node:24-bookworm-slim).
# With --offline: image/build-offline.sh (debootstrap base from your apt mirror, no registry needed).
set -Eeuo pipefail
IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

args=()
offline=0
for a in "$@"; do
  if [ "$a" = "--offline" ]; then offline=1; else args+=("$a"); fi
done
[ $offline = 1 ] && exec bash "$IMAGE_DIR/build-offline.sh" "${args[@]}"

TAG="claude-vm/workspace:latest"
AGENTS="claude codex gemini qwen opencode"
CA_BUNDLE="${NODE_EXTRA_CA_CERTS:-}"
set -- "${args[@]}"
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --agents) AGENTS="$2"; shift 2 ;;
    --ca-bundle) CA_BUNDLE="$2"; shift 2 ;;
    --force) shift ;;  # docker's own layer cache decides what to rebuild
    *) echo "build: error: unknown option $1" >&2; exit 2 ;;
  esac
done

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp -R "$IMAGE_DIR/." "$ctx/"
rm -f "$ctx"/ca/*.crt
if [ -n "$CA_BUNDLE" ] && [ "$CA_BUNDLE" != none ]; then
  [ -f "$CA_BUNDLE" ] || { echo "build: error: CA bundle $CA_BUNDLE does not exist" >&2; exit 1; }
  cp "$CA_BUNDLE" "$ctx/ca/extra.crt"
fi
echo "Building $TAG from image/Dockerfile (agents: $AGENTS)"
docker build -t "$TAG" --build-arg AGENTS="$AGENTS" "$ctx"
