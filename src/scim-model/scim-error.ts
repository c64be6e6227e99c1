import SCIMMY from 'scimmy';

// The SCIM error message (RFC 7644 §3.12) as the protocol model raises it. Which status the
// failures of the layers below become is the HTTP surface's business (scim-http/errors.ts).

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

/**
 * The SCIM error an error of the protocol model stands for: a ScimError itself, or one of scimmy's
 * (its validation and PatchOp throw SCIMMY.Types.Error); undefined for anything else.
 */
export function scimErrorOf(e: unknown): ScimError | undefined {
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
  return undefined;
}
