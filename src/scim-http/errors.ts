import { DirectoryError, type DirectoryErrorCode } from '../directory/errors.js';
import { ScimError, type ScimType, scimErrorOf } from '../scim-model/scim-error.js';
import {
  StoreBindingError,
  StoreLockTimeoutError,
  StoreSetupError,
  StoreUnavailableError,
} from '../store/errors.js';
import { StoreStaleError } from '../store/types.js';
import {
  CREDENTIAL_CODES,
  type TransportFailureKind,
  ErrorCode as UpstreamCode,
  VolcengineApiError,
  VolcengineTransportError,
} from '../volcengine/errors.js';

// What the client sees for each failure of the layers below: every error declared once, with its
// status, scimType, Retry-After and detail (the manner of fastify's lib/errors.js). Upstream
// details only an operator can act on stay in the logs; the client gets a useful, secret-free
// sentence. README "Upstream errors → SCIM responses" has the upstream half as a table.

interface Rule<E> {
  status: number;
  scimType?: ScimType;
  /** seconds, sent as Retry-After */
  retryAfter?: number | ((e: E) => number | undefined);
  /** the client's sentence; the error's own message when absent */
  detail?: (e: E) => string;
}

const INTERNAL_DETAIL = 'internal error; the request id in the X-Request-Id header locates it';
const STORE_DOWN_DETAIL = 'the bridge cannot reach its store; retry later';

/** The directory's errors: their messages are written for the client. */
export const DIRECTORY_ERRORS: { readonly [C in DirectoryErrorCode]: Rule<DirectoryError> } = {
  NOT_FOUND: { status: 404 },
  UNIQUENESS: { status: 409, scimType: 'uniqueness' },
  PRECONDITION_FAILED: { status: 412 },
  // Nothing was changed: the lock holder finishes shortly.
  RESOURCE_BUSY: { status: 503, retryAfter: 1 },
  TOO_MANY: { status: 400, scimType: 'tooMany' },
  INVALID_VALUE: { status: 400, scimType: 'invalidValue' },
  UNAVAILABLE: { status: 503, retryAfter: 10 },
  INCONSISTENT: { status: 500 },
};

type StoreError =
  | StoreUnavailableError
  | StoreSetupError
  | StoreBindingError
  | StoreLockTimeoutError
  | StoreStaleError;

/** The store's errors: their messages are for operators, so each has a client sentence here. */
export const STORE_ERRORS: { readonly [C in StoreError['code']]: Rule<StoreError> } = {
  // Readiness is 503 too; nothing was acknowledged, so the client's retry is safe.
  STORE_UNAVAILABLE: { status: 503, retryAfter: 10, detail: () => STORE_DOWN_DETAIL },
  LOCK_TIMEOUT: {
    status: 503,
    retryAfter: 1,
    detail: (e) =>
      `another request is still changing this ${(e as StoreLockTimeoutError).key.startsWith('group:') ? 'group' : 'user'}; nothing was changed, retry shortly`,
  },
  STORE_STALE: {
    status: 412,
    detail: () => 'the resource was changed by another request meanwhile; read it again and retry',
  },
  // Start-up errors: a request never meets them, and their text names settings.
  STORE_SETUP: { status: 500, detail: () => INTERNAL_DETAIL },
  STORE_BINDING: { status: 500, detail: () => INTERNAL_DETAIL },
};

const ref = (e: VolcengineApiError) => (e.requestId ? ` (CloudIdentity RequestId ${e.requestId})` : '');
const rejected: Rule<VolcengineApiError> = {
  status: 400,
  scimType: 'invalidValue',
  detail: (e) => `CloudIdentity rejected a value: ${e.upstreamMessage}`,
};
const lacksPermission: Rule<VolcengineApiError> = {
  status: 403,
  detail: (e) => `the bridge's Volcengine credentials lack the permission for ${e.action}${ref(e)}`,
};
// Never 401: Entra and Okta would read it as "your SCIM token is wrong".
const credentials: Rule<VolcengineApiError> = {
  status: 502,
  detail: (e) => `CloudIdentity refused the bridge's credentials${ref(e)}`,
};

/** CloudIdentity `Error.Code`s with an answer of their own. */
export const UPSTREAM_ERRORS: Readonly<Record<string, Rule<VolcengineApiError>>> = {
  [UpstreamCode.UserNameAlreadyExists]: {
    status: 409,
    scimType: 'uniqueness',
    detail: () => 'userName is already taken in CloudIdentity',
  },
  [UpstreamCode.GroupNameAlreadyExists]: {
    status: 409,
    scimType: 'uniqueness',
    detail: () => 'a group with this name already exists in CloudIdentity',
  },
  InvalidParam: rejected,
  ParamMissing: rejected,
  MissingParameter: rejected,
  ParamIncludeSensitiveWord: {
    status: 400,
    scimType: 'invalidValue',
    detail: (e) => `CloudIdentity rejected a value as containing a sensitive word: ${e.upstreamMessage}`,
  },
  PermissionError: lacksPermission,
  AccessDenied: lacksPermission,
  LackPolicy: lacksPermission,
  LackProjectPolicy: lacksPermission,
  ReachedQuotaLimit: { status: 403, detail: (e) => `CloudIdentity quota reached: ${e.upstreamMessage}` },
  ServiceStatusException: {
    status: 503,
    retryAfter: 60,
    detail: (e) => `CloudIdentity is not available: ${e.upstreamMessage}`,
  },
  ConcurrentException: {
    status: 503,
    retryAfter: 5,
    detail: () => 'CloudIdentity reported a concurrent change; retry shortly',
  },
  FlowLimitExceeded: {
    status: 429,
    retryAfter: (e) => e.retryAfterSeconds ?? 5,
    detail: () => 'CloudIdentity is throttling requests; retry later',
  },
  [UpstreamCode.UserNotFound]: { status: 404, detail: () => 'user not found in CloudIdentity' },
  [UpstreamCode.UserGroupNotFound]: { status: 404, detail: () => 'group not found in CloudIdentity' },
  [UpstreamCode.UserGroupDeletionConflict]: {
    status: 409,
    detail: (e) => `CloudIdentity refused to delete the group: ${e.upstreamMessage}`,
  },
  ...Object.fromEntries([...CREDENTIAL_CODES].map((code) => [code, credentials])),
};

/** Any other CloudIdentity code, by the HTTP status it came with. */
function upstreamByStatus(e: VolcengineApiError): Rule<VolcengineApiError> {
  if (e.httpStatus === 504)
    return { status: 504, detail: () => `CloudIdentity timed out on ${e.action}${ref(e)}` };
  if (e.httpStatus >= 500)
    return { status: 502, detail: () => `CloudIdentity failed on ${e.action}${ref(e)}` };
  if (e.httpStatus === 404) return { status: 404, detail: () => `CloudIdentity: ${e.upstreamMessage}` };
  return { status: 502, detail: () => `CloudIdentity answered ${e.code} to ${e.action}${ref(e)}` };
}

/** No well-formed answer from CloudIdentity, by kind. */
export const TRANSPORT_ERRORS: { readonly [K in TransportFailureKind]: Rule<VolcengineTransportError> } = {
  deadline: { status: 504, detail: (e) => `CloudIdentity did not answer ${e.action} in time` },
  timeout: { status: 504, detail: (e) => `CloudIdentity did not answer ${e.action} in time` },
  malformed: { status: 502, detail: (e) => `CloudIdentity sent an unreadable answer to ${e.action}` },
  network: { status: 502, detail: (e) => `CloudIdentity could not be reached for ${e.action}` },
};

function apply<E extends Error>(rule: Rule<E>, e: E): ScimError {
  const retryAfter = typeof rule.retryAfter === 'function' ? rule.retryAfter(e) : rule.retryAfter;
  return new ScimError(rule.status, rule.scimType, rule.detail ? rule.detail(e) : e.message, retryAfter);
}

/** Maps anything thrown while serving a request to the SCIM error the client should see. */
export function toScimError(e: unknown): ScimError {
  if (e instanceof DirectoryError) return apply(DIRECTORY_ERRORS[e.code], e);
  if (e instanceof VolcengineApiError) return apply(UPSTREAM_ERRORS[e.code] ?? upstreamByStatus(e), e);
  if (e instanceof VolcengineTransportError) return apply(TRANSPORT_ERRORS[e.kind], e);
  if (
    e instanceof StoreUnavailableError ||
    e instanceof StoreLockTimeoutError ||
    e instanceof StoreStaleError ||
    e instanceof StoreSetupError ||
    e instanceof StoreBindingError
  ) {
    return apply(STORE_ERRORS[e.code], e);
  }
  const own = scimErrorOf(e);
  if (own) return own;
  return new ScimError(500, undefined, INTERNAL_DETAIL);
}
