/** @module Errors shared by every room: a UserError is an expected failure with a sentence a person can act on. */

export type ErrorCode =
  | 'not_found'
  | 'ambiguous'
  | 'invalid_argument'
  | 'already_exists'
  | 'provider_unavailable'
  | 'image_missing'
  | 'source_failed'
  | 'wrong_state'
  | 'cancelled'
  | 'unauthorized'
  | 'forbidden'
  | 'limit_exceeded';

/** An expected failure (bad input, missing thing, unreachable engine). `message` is one full sentence; `hint` names the fix. */
export class UserError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UserError';
  }
}

/** Exit quietly with a code (e.g. `exec` passing through the remote command's status). */
export class ExitError extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
