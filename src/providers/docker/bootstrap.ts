/** @module Entrypoint for images that were not built for claude-vm (`--image python:3.12`): give them a user and a home. */

/** UID/GID the workspace user has in every image, ours or not, so volume ownership is portable. */
export const WORKSPACE_UID = 1000;

/**
 * Entrypoints touch this file when the workspace is usable. /run/claude-vm is a tmpfs, so a restarted container
 * never sees the previous start's marker.
 */
export const READY_DIR = '/run/claude-vm';
export const READY_FILE = `${READY_DIR}/ready`;

/**
 * Runs as root once per container start, then idles as PID 1's child (docker --init reaps and forwards signals).
 * It must work with busybox, Alpine and Debian tool sets alike, so it tries each way of adding a user.
 */
export const BOOTSTRAP_SCRIPT = `
set -u
if ! getent passwd ${WORKSPACE_UID} >/dev/null 2>&1 && ! grep -q ':x:${WORKSPACE_UID}:' /etc/passwd 2>/dev/null; then
  (groupadd -g ${WORKSPACE_UID} dev && useradd -m -u ${WORKSPACE_UID} -g ${WORKSPACE_UID} -s /bin/sh dev) >/dev/null 2>&1 \\
  || (addgroup -g ${WORKSPACE_UID} dev && adduser -D -u ${WORKSPACE_UID} -G dev dev) >/dev/null 2>&1 \\
  || echo "dev:x:${WORKSPACE_UID}:${WORKSPACE_UID}:dev:/home/dev:/bin/sh" >> /etc/passwd
fi
mkdir -p /home/dev /workspace
chown ${WORKSPACE_UID}:${WORKSPACE_UID} /home/dev /workspace
touch ${READY_FILE}
exec sleep infinity 2>/dev/null || while :; do sleep 3600; done
`;
