// Failures of directory operations, in the domain's own words: one base class, and per failure a
// subclass with a constant `name` and a stable `code` (the manner of undici's lib/core/errors.js).
// No HTTP here: the SCIM layer maps each code to a status and scimType once (scim-http/errors.ts).
// Callers branch on the class or the code, never on the message, which is the client's sentence.

export type DirectoryErrorCode =
  | 'NOT_FOUND'
  | 'UNIQUENESS'
  | 'PRECONDITION_FAILED'
  | 'RESOURCE_BUSY'
  | 'TOO_MANY'
  | 'INVALID_VALUE'
  | 'UNAVAILABLE'
  | 'INCONSISTENT';

export abstract class DirectoryError extends Error {
  abstract override readonly name: string;
  abstract readonly code: DirectoryErrorCode;
  /**
   * The error decides the operation: retrying it cannot succeed, so nothing is left to finish (an
   * intent that meets it is cleared). False for failures that may pass (busy, unavailable).
   */
  abstract readonly decided: boolean;
}

/** The resource does not exist (or no longer does). */
export class NotFoundError extends DirectoryError {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND';
  readonly decided = true;
}

/** A unique attribute (userName, displayName) is already held by another resource. */
export class UniquenessError extends DirectoryError {
  override readonly name = 'UniquenessError';
  readonly code = 'UNIQUENESS';
  readonly decided = true;
}

/** The resource is not at the version the caller expected (If-Match, or changed meanwhile). */
export class PreconditionFailedError extends DirectoryError {
  override readonly name = 'PreconditionFailedError';
  readonly code = 'PRECONDITION_FAILED';
  readonly decided = true;
}

/** Another request holds the resource's lock past the caller's deadline; nothing was changed. */
export class ResourceBusyError extends DirectoryError {
  override readonly name = 'ResourceBusyError';
  readonly code = 'RESOURCE_BUSY';
  readonly decided = false;
  constructor(
    /** the lock key, `user:<id>` or `group:<id>` */
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/** A filter or scan would touch more resources than the configured limit. */
export class TooManyError extends DirectoryError {
  override readonly name = 'TooManyError';
  readonly code = 'TOO_MANY';
  readonly decided = true;
}

/** A value the directory (or CloudIdentity's limits) cannot accept. */
export class InvalidValueError extends DirectoryError {
  override readonly name = 'InvalidValueError';
  readonly code = 'INVALID_VALUE';
  readonly decided = true;
}

/** Something the operation depends on cannot be used right now; retrying later may succeed. */
export class DirectoryUnavailableError extends DirectoryError {
  override readonly name = 'DirectoryUnavailableError';
  readonly code = 'UNAVAILABLE';
  readonly decided = false;
}

/** The store and the operation disagree in a way that should not happen (a record vanished). */
export class InconsistentStateError extends DirectoryError {
  override readonly name = 'InconsistentStateError';
  readonly code = 'INCONSISTENT';
  readonly decided = false;
}

export const notFound = (detail: string) => new NotFoundError(detail);
export const conflict = (detail: string) => new UniquenessError(detail);
export const preconditionFailed = (detail: string) => new PreconditionFailedError(detail);
export const tooMany = (detail: string) => new TooManyError(detail);
export const invalidValue = (detail: string) => new InvalidValueError(detail);

/** Did `err` decide the operation (nothing left to finish, whatever the retries)? */
export function isDecided(err: unknown): boolean {
  return err instanceof DirectoryError && err.decided;
}
