import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';

/** Paths that may carry secrets; censored in every log line. */
export const SECRET_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-security-token"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.Authorization',
  'authorization',
  'Authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'secretAccessKey',
  '*.secretAccessKey',
  'secretKey',
  '*.secretKey',
  'sessionToken',
  '*.sessionToken',
  'metricsToken',
  '*.metricsToken',
  'databaseUrl',
  '*.databaseUrl',
  'config.scimTokens',
  'scimTokens',
  'VOLCENGINE_SECRET_KEY',
  'VOLCENGINE_SESSION_TOKEN',
  'SCIM_BEARER_TOKENS',
  'METRICS_TOKEN',
  'DATABASE_URL',
];
/** Paths that carry personal data; censored unless LOG_PII=true. */
export const PII_PATHS = [
  'email',
  '*.email',
  'emails',
  '*.emails',
  'phone',
  '*.phone',
  'phoneNumbers',
  '*.phoneNumbers',
  'Email',
  '*.Email',
  'Phone',
  '*.Phone',
  'userName',
  '*.userName',
  'UserName',
  '*.UserName',
];

const EMAIL = /[\w.!#$%&'*+?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g;
/** International numbers (+86 138 0013 8000, tel:+1-201-555-0123): what SCIM phoneNumbers carry. */
const PHONE = /\+\d[\d\s().-]{5,}\d/g;

/** Masks e-mail addresses and international phone numbers inside free text (URLs, error messages). */
export function scrubPii(text: string): string {
  // Each pattern needs its '@' or '+': most text (paths, ids) has neither and is not scanned at all.
  let out = text;
  if (out.includes('@')) out = out.replace(EMAIL, '[email]');
  if (out.includes('+')) out = out.replace(PHONE, '[phone]');
  return out;
}

/** Query parameters logged as sent (paging and projection): nothing a secret hides in. */
const SAFE_PARAMETERS = new Set([
  'startindex',
  'count',
  'attributes',
  'excludedattributes',
  'sortby',
  'sortorder',
]);
/** A parameter name shown as is; anything else (a token pasted as a name) is redacted too. */
const PLAIN_NAME = /^[A-Za-z_][A-Za-z_.-]{0,31}$/;

/**
 * A request URL fit for the log. Query parameters other than the SCIM paging and projection ones
 * are redacted whatever LOG_PII says (`?access_token=…`, `?password=…` never reach the log). A
 * SCIM `filter` keeps its structure with its values masked (a string left unterminated included),
 * and e-mail addresses or phone numbers in the path are masked, unless `logPii`.
 */
export function redactUrl(url: string, logPii: boolean): string {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const path = logPii ? rawPath : scrubPii(safeDecode(rawPath));
  if (q < 0) return path;
  const parts: string[] = [];
  for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
    const name = key.toLowerCase();
    const shownKey = PLAIN_NAME.test(key) ? key : '[redacted]';
    let shown: string;
    if (name === 'filter') shown = logPii ? value : scrubPii(maskFilter(value));
    else if (SAFE_PARAMETERS.has(name)) shown = logPii ? value : scrubPii(value);
    else shown = '[redacted]';
    parts.push(`${shownKey}=${shown}`);
  }
  return `${path}?${parts.join('&')}`;
}

const QUOTED = /"(?:[^"\\]|\\[\s\S]?)*(?:"|$)/g;
const BARE_VALUE = /\b(eq|ne|co|sw|ew|gt|ge|lt|le)(\s+)(?!"\[redacted\]")[^\s()[\]"]+/gi;

/** `userName eq "x" and title eq y` → `userName eq "[redacted]" and title eq [redacted]`. */
export function maskFilter(filter: string): string {
  // A quote never closed runs to the end: masked to the end.
  return filter.replace(QUOTED, '"[redacted]"').replace(BARE_VALUE, '$1$2[redacted]');
}

function safeDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** pino's error serializer, with personal data masked in messages and stacks unless `logPii`. */
export function errorSerializer(logPii: boolean): (err: unknown) => unknown {
  return (err: unknown) => {
    const serialized = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
    if (logPii || !serialized || typeof serialized !== 'object') return serialized;
    return scrubObject(serialized, 0);
  };
}

function scrubObject(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubPii(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubObject(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubObject(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  level: string;
  logPii: boolean;
  pretty?: boolean;
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const redact = {
    paths: options.logPii ? SECRET_PATHS : [...SECRET_PATHS, ...PII_PATHS],
    censor: '[redacted]',
  };
  const base = {
    level: options.level,
    redact,
    base: { service: 'volc-scim-bridge' },
    serializers: { err: errorSerializer(options.logPii) },
  };
  if (options.destination) return pino(base, options.destination);
  // pino-pretty is a development dependency: absent from the production image, JSON is used then.
  if (options.pretty && prettyAvailable()) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base);
}

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
