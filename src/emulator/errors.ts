/**
 * An error answered with the CloudIdentity error envelope. Codes, statuses and message formats follow
 * the reference (§2.1, §6); where the reference is silent the choice is documented in the README.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly codeN?: number,
    /** Extra response headers, e.g. Retry-After on throttling. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

// Gateway errors (reference §6.1).
export const gatewayErrors = {
  missingParameter: (name: string) =>
    new ApiError(400, 'MissingParameter', `The request is missing ${name} parameter.`, 100002),
  missingAuthenticationToken: () =>
    new ApiError(401, 'MissingAuthenticationToken', 'Request is missing Authentication Token', 100003),
  invalidTimestamp: (detail: string) =>
    new ApiError(
      403,
      'InvalidTimestamp',
      `The request signature is expired or not yet valid: ${detail}.`,
      100006,
    ),
  invalidActionOrVersion: (action: string, version: string) =>
    new ApiError(
      404,
      'InvalidActionOrVersion',
      `Could not find operation ${action} for version ${version}.`,
      100008,
    ),
  invalidAccessKey: (ak: string) =>
    new ApiError(
      401,
      'InvalidAccessKey',
      `The accesskey [${ak}] included in the request is invalid.`,
      100009,
    ),
  signatureDoesNotMatch: () =>
    new ApiError(
      401,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method. Consult the service documentation for details.',
      100010,
    ),
  invalidAuthorization: () =>
    new ApiError(
      400,
      'InvalidAuthorization',
      "Invalid 'Authorization' header, Pls check authorization header.",
    ),
  invalidCredential: () =>
    new ApiError(
      400,
      'InvalidCredential',
      "Invalid credential in 'Authorization', Pls check credential in authorization header.",
    ),
  /** IAM: the access key's policies do not allow the action (reference §6.1). */
  accessDenied: (action: string) =>
    new ApiError(
      403,
      'AccessDenied',
      `User is not authorized to perform: cloudidentity:${action} on resource: trn:cloudidentity:::*.`,
      100013,
    ),
  methodNotAllowed: () => new ApiError(405, 'MethodNotAllowed', 'HTTP Method Not Allowed.', 100020),
  requestTooLarge: (limit: number) =>
    new ApiError(413, 'RequestEntityTooLarge', `The request body exceeds ${limit} bytes.`),
  flowLimitExceeded: () =>
    new ApiError(429, 'FlowLimitExceeded', 'Request was denied due to request throttling.', 100018, {
      'Retry-After': '1',
    }),
  serviceUnavailableTemp: () =>
    new ApiError(
      503,
      'ServiceUnavailableTemp',
      'Service is temporarily unavailable, please try again later.',
      100019,
    ),
} as const;

// CloudIdentity business errors (reference §2.1, §6.2).
export const businessErrors = {
  invalidParam: (name: string, value: unknown) =>
    new ApiError(400, 'InvalidParam', `The parameter ${name}[${renderValue(value)}] is invalid`),
  paramMissing: (name: string) => new ApiError(400, 'ParamMissing', `Missing parameter ${name}`),
  sensitiveWord: (name: string) =>
    new ApiError(400, 'ParamIncludeSensitiveWord', `The parameter ${name} Include sensitive Word`),
  concurrentException: () => new ApiError(400, 'ConcurrentException', 'Concurrent request exception'),
  userNameAlreadyExists: () => new ApiError(404, 'UserNameAlreadyExists', 'User name already exists'),
  groupNameAlreadyExists: () => new ApiError(409, 'GroupNameAlreadyExists', 'Group name already exists'),
  reachedQuotaLimit: (what: string) =>
    new ApiError(429, 'ReachedQuotaLimit', `The count of ${what} is exceeded quota limit`),
  userNotFound: () => new ApiError(404, 'UserNotFound', 'User is not found'),
  userGroupNotFound: () => new ApiError(404, 'UserGroupNotFound', 'User group is not found'),
  userAlreadyInGroup: () => new ApiError(409, 'UserAlreadyInGroup', 'User is already in the user group'),
  userNotInGroup: () => new ApiError(404, 'UserNotInGroup', 'User is not in the user group'),
  userGroupDeletionConflict: () =>
    new ApiError(
      409,
      'UserGroupDeletionConflict',
      'Make sure that the user group has no members before deleting it',
    ),
  internalError: (detail: string) => new ApiError(500, 'InternalError', `Unknown internal error: ${detail}`),
} as const;

/** Mirrors Go's %v closely enough for messages: strings as-is, other values as JSON. */
function renderValue(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 80)}...` : value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
