/** @module The one version number of this build (CLI, server, API document). */
export const VERSION = '0.1.0';
