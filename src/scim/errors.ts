import SCIMMY from 'scimmy';
import { StoreUnavailableError } from '../store/errors.js';
import { ErrorCode, VolcengineApiError, VolcengineTransportError } from '../volcengine/errors.js';

export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/**
 * A SCIM error response. Formatted by the bridge itself rather than scimmy's Messages.Error,
 * which refuses the 429/502/503/504 statuses the bridge must be able to answer.
 */
export class ScimError extends Error {
  override readonly name = 'ScimError';
  constructor(
    readonly status: number,
    readonly scimType: ScimType | undefined,
    readonly detail: string,
    /** seconds, sent as Retry-After */
    readonly retryAfter?: number,
  ) {
    super(detail);
  }

  toBody(): Record<string, unknown> {
    return {
      schemas: [ERROR_SCHEMA],
      status: String(this.status),
      ...(this.scimType ? { scimType: this.scimType } : {}),
      detail: this.detail,
    };
  }
}

export const badRequest = (scimType: ScimType, detail: string) => new ScimError(400, scimType, detail);

/**
 * Text of a JavaScript runtime error (a library tripping over an input shape it did not expect)
 * rather than a sentence about the request. Such text must never reach a client.
 */
const RUNTIME_TEXT =
  /Cannot |undefined|null to object|Maximum call stack|is not a function|of undefined|not extensible|is not iterable|is not defined|Unexpected token|Invalid array length/;

/** A library's message when it speaks about the request; otherwise `fallback`, which must. */
export function requestDetail(message: string, fallback: string): string {
  return RUNTIME_TEXT.test(message) ? fallback : message;
}
export const notFound = (detail: string) => new ScimError(404, undefined, detail);
export const conflict = (detail: string) => new ScimError(409, 'uniqueness', detail);

/** CloudIdentity error codes the bridge branches on (see DESIGN.md §3). */
export const UpstreamCode = ErrorCode;

const CREDENTIAL_CODES = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKey',
  'InvalidSecretToken',
  'MissingAuthenticationToken',
  'MissingSignature',
  'InvalidAuthorization',
  'InvalidCredential',
  'InvalidTimestamp',
]);

/** Is this an upstream answer about the bridge's own Volcengine credentials (an operator problem)? */
export function isCredentialProblem(e: unknown): boolean {
  return e instanceof VolcengineApiError && CREDENTIAL_CODES.has(e.code);
}

/**
 * Maps anything thrown while serving a request to the SCIM error the client should see.
 * Upstream details that only an operator can act on stay in the logs; the client gets a
 * useful, secret-free sentence.
 */
export function toScimError(e: unknown): ScimError {
  if (e instanceof ScimError) return e;
  if (e instanceof SCIMMY.Types.Error) {
    const err = e as unknown as { status: number; scimType?: ScimType; message: string };
    const status = Number(err.status) || 400;
    return new ScimError(
      status,
      err.scimType,
      requestDetail(err.message, 'the request could not be applied to this resource'),
    );
  }
  if (e instanceof VolcengineApiError) return fromUpstream(e);
  if (e instanceof StoreUnavailableError) {
    // Readiness is 503 too; nothing was acknowledged, so the client's retry is safe.
    return new ScimError(503, undefined, 'the bridge cannot reach its store; retry later', 10);
  }
  if (e instanceof VolcengineTransportError) {
    if (e.kind === 'deadline' || e.kind === 'timeout') {
      return new ScimError(504, undefined, `CloudIdentity did not answer ${e.action} in time`);
    }
    if (e.kind === 'malformed') {
      return new ScimError(502, undefined, `CloudIdentity sent an unreadable answer to ${e.action}`);
    }
    return new ScimError(502, undefined, `CloudIdentity could not be reached for ${e.action}`);
  }
  return new ScimError(
    500,
    undefined,
    'internal error; the request id in the X-Request-Id header locates it',
  );
}

function fromUpstream(e: VolcengineApiError): ScimError {
  const ref = e.requestId ? ` (CloudIdentity RequestId ${e.requestId})` : '';
  switch (e.code) {
    case UpstreamCode.UserNameAlreadyExists:
      return conflict('userName is already taken in CloudIdentity');
    case UpstreamCode.GroupNameAlreadyExists:
      return conflict('a group with this name already exists in CloudIdentity');
    case 'InvalidParam':
    case 'ParamMissing':
    case 'MissingParameter':
      return badRequest('invalidValue', `CloudIdentity rejected a value: ${e.upstreamMessage}`);
    case 'ParamIncludeSensitiveWord':
      return badRequest(
        'invalidValue',
        `CloudIdentity rejected a value as containing a sensitive word: ${e.upstreamMessage}`,
      );
    case 'PermissionError':
    case 'AccessDenied':
    case 'LackPolicy':
    case 'LackProjectPolicy':
      return new ScimError(
        403,
        undefined,
        `the bridge's Volcengine credentials lack the permission for ${e.action}${ref}`,
      );
    case 'ReachedQuotaLimit':
      return new ScimError(403, undefined, `CloudIdentity quota reached: ${e.upstreamMessage}`);
    case 'ServiceStatusException':
      return new ScimError(503, undefined, `CloudIdentity is not available: ${e.upstreamMessage}`, 60);
    case 'ConcurrentException':
      return new ScimError(503, undefined, 'CloudIdentity reported a concurrent change; retry shortly', 5);
    case 'FlowLimitExceeded':
      return new ScimError(
        429,
        undefined,
        'CloudIdentity is throttling requests; retry later',
        e.retryAfterSeconds ?? 5,
      );
    case UpstreamCode.UserNotFound:
      return notFound('user not found in CloudIdentity');
    case UpstreamCode.UserGroupNotFound:
      return notFound('group not found in CloudIdentity');
    case UpstreamCode.UserGroupDeletionConflict:
      return new ScimError(409, undefined, `CloudIdentity refused to delete the group: ${e.upstreamMessage}`);
  }
  if (CREDENTIAL_CODES.has(e.code)) {
    // Never 401: Entra and Okta would read it as "your SCIM token is wrong".
    return new ScimError(502, undefined, `CloudIdentity refused the bridge's credentials${ref}`);
  }
  if (e.httpStatus === 504)
    return new ScimError(504, undefined, `CloudIdentity timed out on ${e.action}${ref}`);
  if (e.httpStatus >= 500) return new ScimError(502, undefined, `CloudIdentity failed on ${e.action}${ref}`);
  if (e.httpStatus === 404) return notFound(`CloudIdentity: ${e.upstreamMessage}`);
  return new ScimError(502, undefined, `CloudIdentity answered ${e.code} to ${e.action}${ref}`);
}
