import { randomFillSync } from 'node:crypto';

// CloudIdentity renders times in China Standard Time (UTC+8, no DST), e.g. 2024-07-22T21:53:54+08:00.
const CST_OFFSET_MS = 8 * 3600 * 1000;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

// Bulk seeding formats the same second 100k times; remember the last one.
let lastSecond = Number.NaN;
let lastFormatted = '';

/** RFC 3339 timestamp with a +08:00 offset, second precision. */
export function formatTimestamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === lastSecond) return lastFormatted;
  const d = new Date(second * 1000 + CST_OFFSET_MS);
  lastFormatted =
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+08:00`;
  lastSecond = second;
  return lastFormatted;
}

/** RequestId as in the doc examples: yyyyMMddHHmmss (UTC+8) + 18 uppercase hex digits. */
export function newRequestId(ms: number): string {
  const d = new Date(ms + CST_OFFSET_MS);
  const stamp =
    `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  let hex = '';
  for (let i = 0; i < 18; i++) hex += HEX[nextRandomByte() & 15];
  return stamp + hex;
}

/** Parses X-Date (yyyyMMdd'T'HHmmss'Z'); undefined when malformed or not a real instant. */
export function parseXDate(xDate: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(xDate);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Reject rollovers such as 20250230 or hour 25.
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h) return undefined;
  if (back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) return undefined;
  return ms;
}

const HEX = '0123456789ABCDEF';
const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// One pooled buffer keeps id generation cheap when seeding 100k users.
const pool = Buffer.alloc(8192);
let poolPos = pool.length;

function nextRandomByte(): number {
  if (poolPos >= pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  return pool[poolPos++]!;
}

const ID_LENGTH = 11;
const idBytes = Buffer.alloc(ID_LENGTH);

/** Opaque 11-character alphanumeric id, like the doc example `eTljTl9ncoV`. */
export function newOpaqueId(): string {
  for (let i = 0; i < ID_LENGTH; ) {
    const b = nextRandomByte();
    // 248 = 4 * 62: rejecting the top bytes keeps every character equally likely.
    if (b < 248) idBytes[i++] = ALPHANUM.charCodeAt(b % 62);
  }
  // One flat string instead of an 11-piece concatenation: less garbage when seeding 100k users.
  return idBytes.toString('latin1');
}
