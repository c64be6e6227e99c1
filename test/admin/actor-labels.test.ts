// SCIM_BEARER_TOKENS labels (`okta:TOKEN`): the audit trail names the client by its label, or by a
// short fingerprint for an unlabelled token; never by the token.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { tokenFingerprint } from '../../src/scim-http/auth.js';

const gen = () => 'generated-token-0123456789';

describe('SCIM token labels', () => {
  it('splits labels from tokens, keeping unlabelled tokens as they are', () => {
    const config = loadConfig(
      {
        SCIM_BEARER_TOKENS:
          'okta:okta-token-0123456789abc, plain-token-0123456789ab ,entra.prod:entra-token-0123456789',
      },
      gen,
    );
    expect(config.scimTokens).toEqual([
      'okta-token-0123456789abc',
      'plain-token-0123456789ab',
      'entra-token-0123456789',
    ]);
    expect(config.scimTokenLabels).toEqual(['okta', undefined, 'entra.prod']);
  });

  it('checks the length of the token, not of label:token, and refuses a label used twice', () => {
    expect(() => loadConfig({ SCIM_BEARER_TOKENS: 'okta:short-token' }, gen)).toThrow(
      /at least 16 characters/,
    );
    expect(() =>
      loadConfig({ SCIM_BEARER_TOKENS: 'okta:token-one-0123456789,okta:token-two-0123456789' }, gen),
    ).toThrow(/a label names two tokens/);
  });

  it('names an unlabelled token by a 12-hex-digit SHA-256 prefix that does not contain it', () => {
    const fp = tokenFingerprint('plain-token-0123456789ab');
    expect(fp).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(fp).toBe(tokenFingerprint('plain-token-0123456789ab'));
    expect(fp).not.toBe(tokenFingerprint('plain-token-0123456789ac'));
  });

  it('defaults AUDIT_RETENTION_DAYS to 180 and validates it', () => {
    expect(loadConfig({}, gen).auditRetentionDays).toBe(180);
    expect(loadConfig({ AUDIT_RETENTION_DAYS: '7' }, gen).auditRetentionDays).toBe(7);
    expect(() => loadConfig({ AUDIT_RETENTION_DAYS: '0' }, gen)).toThrow(/AUDIT_RETENTION_DAYS/);
  });
});
