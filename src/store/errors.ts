// Failures of the bridge's own store, as domain errors with a stable `code` (like undici's
// lib/core/errors.js). The SCIM layer maps them once (scim-http/errors.ts); nothing above the store
// looks at a driver's error text.

/**
 * The store cannot be used right now: the database is unreachable or refused the connection, the
 * disk failed, or the database file is locked by something else for longer than the busy timeout.
 * The write was not acknowledged. Usually nothing of it was stored; when the connection died after
 * COMMIT was sent and PostgreSQL could not be asked about the outcome (postgres-driver.ts unit()), it
 * may have committed (whole: state, intent and audit record together), which is why operations are
 * idempotent. Retrying later is the right answer (SCIM 503 with Retry-After, readiness 503).
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'STORE_UNAVAILABLE';
  constructor(
    /** Secret-free reason for logs: an error code or kind, never a connection string. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`the store is unavailable (${reason})`, options);
  }
}

/**
 * The store cannot be opened as configured. `setting` names the environment variable an operator
 * has to look at; the message says what to do. Start-up and --check-config print it and exit.
 */
export class StoreSetupError extends Error {
  override readonly name = 'StoreSetupError';
  readonly code = 'STORE_SETUP';
  constructor(
    readonly setting: 'DATABASE_URL' | 'DATA_DIR',
    message: string,
    options?: { cause?: unknown },
  ) {
    // Messages may start with the setting already ("DATA_DIR /data is in use …").
    super(message.startsWith(setting) ? message : `${setting}: ${message}`, options);
  }
}

/**
 * The store mirrors a different CloudIdentity than the one the bridge is configured for (another
 * account, region or endpoint, or the in-process emulator): its SCIM ids, tombstones and memberships
 * belong to that one, so the bridge refuses to serve them. `held` and `requested` describe both.
 */
export class StoreBindingError extends Error {
  override readonly name = 'StoreBindingError';
  readonly code = 'STORE_BINDING';
  constructor(
    readonly held: string,
    readonly requested: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A resource lock (BridgeStore.lockResource) was not granted before the caller's deadline: another
 * replica holds it. Nothing was changed; the SCIM layer answers 503 with Retry-After.
 */
export class StoreLockTimeoutError extends Error {
  override readonly name = 'StoreLockTimeoutError';
  readonly code = 'LOCK_TIMEOUT';
  constructor(readonly key: string) {
    super(`resource lock not granted in time (${key})`);
  }
}
