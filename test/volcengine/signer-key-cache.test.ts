// The signer memoises the derived signing key; whatever the order of secrets, days, regions and
// services, every signature must equal one computed from a freshly derived key.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveSigningKey, percentEncode, signRequest } from '../../src/volcengine/signer.js';

function sign(secret: string, date: string, region: string, service: string) {
  return signRequest({
    method: 'POST',
    path: '/',
    query: { Action: 'GetUser', Version: '2023-01-01' },
    headers: { Host: 'open.volcengineapi.com', 'Content-Type': 'application/json; charset=utf-8' },
    body: '{"UserId":"u1"}',
    accessKeyId: 'AK',
    secretAccessKey: secret,
    region,
    service,
    date: new Date(date),
  });
}

describe('signing key memo', () => {
  it('signs exactly as with a freshly derived key, across changing inputs', () => {
    const cases: [string, string, string, string][] = [
      ['secret-a', '2026-01-01T23:59:59Z', 'cn-beijing', 'cloudidentity'],
      ['secret-a', '2026-01-01T10:00:00Z', 'cn-beijing', 'cloudidentity'],
      ['secret-a', '2026-01-02T00:00:00Z', 'cn-beijing', 'cloudidentity'],
      ['secret-b', '2026-01-02T00:00:00Z', 'cn-beijing', 'cloudidentity'],
      ['secret-a', '2026-01-02T00:00:00Z', 'cn-beijing', 'cloudidentity'],
      ['secret-a', '2026-01-02T00:00:00Z', 'cn-shanghai', 'cloudidentity'],
      ['secret-a', '2026-01-02T00:00:00Z', 'cn-shanghai', 'iam'],
      ['secret-a', '2026-01-01T23:59:59Z', 'cn-beijing', 'cloudidentity'],
    ];
    for (const [secret, date, region, service] of cases) {
      const r = sign(secret, date, region, service);
      const key = deriveSigningKey(secret, r.shortDate, region, service);
      expect(r.signature).toBe(createHmac('sha256', key).update(r.stringToSign).digest('hex'));
    }
  });
});

describe('percentEncode fast path', () => {
  it('agrees with the byte-by-byte encoding', () => {
    for (const s of ['', 'GetUser', '2023-01-01', 'a.b_c~d-e', 'a b', 'ä', '/x', 'a+b=c&d', '😀']) {
      const slow = [...Buffer.from(s, 'utf8')]
        .map((b) =>
          /^[A-Za-z0-9\-_.~]$/.test(String.fromCharCode(b)) && b < 0x80
            ? String.fromCharCode(b)
            : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
        )
        .join('');
      expect(percentEncode(s)).toBe(slow);
    }
  });
});
