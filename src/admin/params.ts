import type { Request } from 'express';

// Query parameters of the admin API: each one validated, unknown or repeated ones refused, so a
// typo (`outcome=errors`, `sinse=`) is a 400 naming it rather than a silently unfiltered answer.

export class ParamError extends Error {
  override readonly name = 'ParamError';
  /** The query parameter at fault, named in the error body so a form can point at its field. */
  constructor(
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

export type Params = Record<string, string | undefined>;

/** The query as single strings; throws ParamError for unknown or repeated parameters. */
export function queryParams(req: Request, allowed: readonly string[]): Params {
  const out: Params = {};
  for (const [key, value] of Object.entries(req.query)) {
    if (!allowed.includes(key))
      throw new ParamError(
        `unknown parameter '${key.slice(0, 40)}'; expected one of: ${allowed.join(', ')}`,
        key.slice(0, 40),
      );
    if (typeof value !== 'string')
      throw new ParamError(`parameter '${key}' must be given once, as a plain value`, key);
    out[key] = value;
  }
  return out;
}

/** Whether the calendar date at the start of `value` exists (Date.parse rolls 2025-02-31 over to March). */
function dateExists(value: string): boolean {
  const [y, m, d] = value.slice(0, 10).split('-').map(Number);
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/** RFC 3339 (or a date) → ISO-8601 UTC with milliseconds. */
export function timestampParam(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = TIMESTAMP.test(value) && dateExists(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new ParamError(
      `${name} must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z or a date 2025-01-31`,
      name,
    );
  return new Date(ms).toISOString();
}

export function intParam(
  name: string,
  value: string | undefined,
  def: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return def;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new ParamError(`${name} must be a whole number from ${min} to ${max}`, name);
  return Number(value);
}

export function textParam(name: string, value: string | undefined, max = 256): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || value.length > max || value.includes('\u0000'))
    throw new ParamError(`${name} must be 1 to ${max} characters`, name);
  return value.trim();
}

export function enumParam<T extends string>(
  name: string,
  value: string | undefined,
  options: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(options as readonly string[]).includes(value))
    throw new ParamError(`${name} must be one of: ${options.join(', ')}`, name);
  return value as T;
}

/** Cursors are record ids; opaque to clients (`c` + id) so that their shape can change. */
export function cursorParam(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = /^c(\d{1,15})$/.exec(value);
  if (!match)
    throw new ParamError(
      'cursor is not one this API returned (take nextCursor from a previous page)',
      'cursor',
    );
  return match[1];
}

export const cursorOf = (id: string) => `c${id}`;
