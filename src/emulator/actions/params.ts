import { businessErrors } from '../errors.js';

/** Request parameters: query and JSON body merged, body winning (see gateway/request.ts). */
export type Params = Record<string, unknown>;

/** Length in characters (code points), not UTF-16 units or bytes: a documented choice. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function present(params: Params, name: string): unknown {
  const v = params[name];
  // JSON null is treated like an omitted field (the Go SDK omits nil fields).
  return v === null ? undefined : v;
}

/** Optional string with a length range; '' is returned as '' (callers decide what it means). */
export function optionalString(params: Params, name: string, max?: number, min = 0): string | undefined {
  const v = present(params, name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw businessErrors.invalidParam(name, v);
  if (v === '') return v;
  const len = charLength(v);
  if (len < min || (max !== undefined && len > max)) throw businessErrors.invalidParam(name, v);
  return v;
}

/** Required string: absent or '' → ParamMissing; wrong type or too long → InvalidParam. */
export function requiredString(params: Params, name: string, max?: number): string {
  const v = optionalString(params, name, max);
  if (v === undefined || v === '') throw businessErrors.paramMissing(name);
  return v;
}

export function optionalEnum<T extends string>(
  params: Params,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = present(params, name);
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw businessErrors.invalidParam(name, v);
  }
  return v as T;
}

export interface Page {
  pageNumber: number;
  pageSize: number;
  offset: number;
}

/** PageNumber ≥ 1 (default 1), PageSize 1..100 (default 10); JSON numbers or decimal text. */
export function readPage(params: Params): Page {
  const pageNumber = readInt(params, 'PageNumber', 1, 1, Number.MAX_SAFE_INTEGER);
  const pageSize = readInt(params, 'PageSize', 10, 1, 100);
  return { pageNumber, pageSize, offset: (pageNumber - 1) * pageSize };
}

function readInt(params: Params, name: string, dflt: number, min: number, max: number): number {
  const v = present(params, name);
  if (v === undefined) return dflt;
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d{1,16}$/.test(v)) n = Number(v);
  else throw businessErrors.invalidParam(name, v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw businessErrors.invalidParam(name, v);
  return n;
}

/** Rejects the first field containing a configured word (case-insensitive substring). */
export function checkSensitiveWords(
  words: readonly string[],
  fields: Record<string, string | undefined>,
): void {
  if (words.length === 0) return;
  for (const [name, value] of Object.entries(fields)) {
    if (!value) continue;
    const lower = value.toLowerCase();
    if (words.some((w) => lower.includes(w))) throw businessErrors.sensitiveWord(name);
  }
}
