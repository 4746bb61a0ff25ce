/** @module Entrypoint for images that were not built for claude-vm (`--image python:3.12`): give them a user and a home. */

/** UID/GID the workspace user has in every image, ours or not, so volume ownership is portable. */
export const WORKSPACE_UID = 1000;

/**
 * Entrypoints write PID 1's start time here when the workspace is usable. Comparing it with the current PID 1
 * tells this start's marker from a previous start's (a tmpfs would do, but Docker drops tmpfs modes on restart).
 */
export const READY_FILE = '/tmp/.claude-vm-ready';
const BOOT_ID = "cut -d' ' -f22 /proc/1/stat";
export const MARK_READY = `${BOOT_ID} > ${READY_FILE}`;
export const IS_READY = `[ "$(cat ${READY_FILE} 2>/dev/null)" = "$(${BOOT_ID})" ]`;

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
${MARK_READY}
exec sleep infinity 2>/dev/null || while :; do sleep 3600; done
`;
