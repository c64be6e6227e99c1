/** CloudIdentity answered with `ResponseMetadata.Error` (whatever the HTTP status). */
export class VolcengineApiError extends Error {
  override readonly name = 'VolcengineApiError';
  constructor(
    readonly action: string,
    /** Error.Code, e.g. UserNameAlreadyExists */
    readonly code: string,
    readonly httpStatus: number,
    readonly requestId: string | undefined,
    /** Error.Message as sent by the service */
    readonly upstreamMessage: string,
    /** Retry-After in seconds, when the service sent one */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${action} failed: ${code} (HTTP ${httpStatus}): ${upstreamMessage}`);
  }
}

export type TransportFailureKind =
  /** connection refused/reset, socket closed before a full answer */
  | 'network'
  /** one attempt exceeded the per-attempt timeout */
  | 'timeout'
  /** the total deadline passed (possibly after several attempts) */
  | 'deadline'
  /** the body was not a CloudIdentity envelope (not JSON, truncated, HTML, …) */
  | 'malformed';

/** The call could not get a well-formed answer from CloudIdentity. */
export class VolcengineTransportError extends Error {
  override readonly name = 'VolcengineTransportError';
  constructor(
    readonly action: string,
    readonly kind: TransportFailureKind,
    message: string,
    readonly httpStatus?: number,
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(`${action} failed (${kind}): ${message}`, options);
  }
}

export type VolcengineError = VolcengineApiError | VolcengineTransportError;

/**
 * CloudIdentity `Error.Code` values the client and the layers above branch on. The not-found and
 * membership codes are the ones the emulator uses (the real service documents only some of them).
 */
export const ErrorCode = {
  UserNameAlreadyExists: 'UserNameAlreadyExists',
  GroupNameAlreadyExists: 'GroupNameAlreadyExists',
  UserNotFound: 'UserNotFound',
  UserGroupNotFound: 'UserGroupNotFound',
  UserAlreadyInGroup: 'UserAlreadyInGroup',
  UserNotInGroup: 'UserNotInGroup',
  UserGroupDeletionConflict: 'UserGroupDeletionConflict',
  FlowLimitExceeded: 'FlowLimitExceeded',
  ReachedQuotaLimit: 'ReachedQuotaLimit',
  ConcurrentException: 'ConcurrentException',
  InternalError: 'InternalError',
  InternalServiceError: 'InternalServiceError',
  ServiceUnavailableTemp: 'ServiceUnavailableTemp',
  InternalServiceTimeout: 'InternalServiceTimeout',
  InvalidTimestamp: 'InvalidTimestamp',
  InvalidParam: 'InvalidParam',
  ParamMissing: 'ParamMissing',
  ParamIncludeSensitiveWord: 'ParamIncludeSensitiveWord',
  PermissionError: 'PermissionError',
  ServiceStatusException: 'ServiceStatusException',
  SignatureDoesNotMatch: 'SignatureDoesNotMatch',
  InvalidAccessKey: 'InvalidAccessKey',
  InvalidSecretToken: 'InvalidSecretToken',
  MissingAuthenticationToken: 'MissingAuthenticationToken',
  InvalidAuthorization: 'InvalidAuthorization',
  InvalidCredential: 'InvalidCredential',
  AccessDenied: 'AccessDenied',
} as const;

/**
 * CloudIdentity codes that speak about the bridge's own Volcengine credentials (key, secret, session
 * token, signature, clock): an operator problem, never the SCIM client's.
 */
export const CREDENTIAL_CODES: ReadonlySet<string> = new Set<string>([
  ErrorCode.SignatureDoesNotMatch,
  ErrorCode.InvalidAccessKey,
  ErrorCode.InvalidSecretToken,
  ErrorCode.MissingAuthenticationToken,
  'MissingSignature',
  ErrorCode.InvalidAuthorization,
  ErrorCode.InvalidCredential,
  ErrorCode.InvalidTimestamp,
]);

/** The operator's next step when CloudIdentity refuses the bridge's credentials (for logs). */
export const CREDENTIAL_HINT =
  'CloudIdentity refused the bridge credentials: check VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_SESSION_TOKEN, VOLCENGINE_REGION and the machine clock';

/** Is this an upstream answer about the bridge's own Volcengine credentials (an operator problem)? */
export function isCredentialProblem(e: unknown): boolean {
  return e instanceof VolcengineApiError && CREDENTIAL_CODES.has(e.code);
}
