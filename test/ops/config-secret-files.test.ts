import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, FILE_VARIABLES, loadConfig } from '../../src/config.js';
import { runMain } from './process.js';

// Every secret variable can be given as NAME_FILE (Docker and Kubernetes secrets mounted as files).

const dir = mkdtempSync(join(tmpdir(), 'secret-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function secretFile(content: string): string {
  const path = join(dir, `secret-${n++}`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, () => 'generated-token-0123456789');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

const SCIM = 'entra:scim-token-from-a-file-0123456789';
const SECRET = 'volcengine-secret-from-a-file';
const DB = 'postgresql://bridge:file-password@db:5432/bridge';

describe('secrets from files (NAME_FILE)', () => {
  it('reads each secret variable from its _FILE, trimming the final newline', () => {
    const config = loadConfig(
      {
        VOLCENGINE_ACCESS_KEY_FILE: secretFile('AKLTfromfile\n'),
        VOLCENGINE_SECRET_KEY_FILE: secretFile(`${SECRET}\n`),
        VOLCENGINE_SESSION_TOKEN_FILE: secretFile('sts-session-token\n'),
        SCIM_BEARER_TOKENS_FILE: secretFile(`${SCIM}\n`),
        ADMIN_TOKENS_FILE: secretFile('admin-token-from-a-file-0123\n'),
        METRICS_TOKEN_FILE: secretFile('metrics-token-from-a-file\n'),
        DATABASE_URL_FILE: secretFile(`${DB}\r\n`),
      },
      () => 'unused',
    );
    expect(config.volcengine).toEqual({
      accessKeyId: 'AKLTfromfile',
      secretAccessKey: SECRET,
      sessionToken: 'sts-session-token',
    });
    expect(config.scimTokens).toEqual(['scim-token-from-a-file-0123456789']);
    expect(config.scimTokenLabels).toEqual(['entra']);
    expect(config.adminTokens).toEqual(['admin-token-from-a-file-0123']);
    expect(config.metricsToken).toBe('metrics-token-from-a-file');
    expect(config.databaseUrl).toBe(DB);
  });

  it('a token file may list one token per line (rotation: new and old)', () => {
    const config = loadConfig(
      { SCIM_BEARER_TOKENS_FILE: secretFile('okta:new-token-0123456789abc\nold-token-0123456789abc\n') },
      () => 'unused',
    );
    expect(config.scimTokens).toEqual(['new-token-0123456789abc', 'old-token-0123456789abc']);
    expect(config.scimTokenLabels).toEqual(['okta', undefined]);
  });

  it('the value and its _FILE both set: a configuration error naming both, never the value', () => {
    for (const name of FILE_VARIABLES) {
      const found = problems({
        [name]: 'inline-value-0123456789',
        [`${name}_FILE`]: secretFile('x'.repeat(20)),
      });
      expect(found, name).toContain(`${name}: both ${name} and ${name}_FILE are set; set only one of them`);
      expect(found.join('\n'), name).not.toContain('inline-value');
    }
  });

  it('a missing, unreadable, empty or oversized file: a configuration error naming the variable and path', () => {
    const missing = join(dir, 'does-not-exist');
    expect(problems({ SCIM_BEARER_TOKENS_FILE: missing })).toEqual([
      `SCIM_BEARER_TOKENS_FILE: cannot read ${missing} (ENOENT)`,
    ]);
    expect(problems({ ADMIN_TOKENS_FILE: dir })).toEqual([`ADMIN_TOKENS_FILE: cannot read ${dir} (EISDIR)`]);
    const empty = secretFile('\n');
    expect(problems({ METRICS_TOKEN_FILE: empty })).toEqual([`METRICS_TOKEN_FILE: ${empty} is empty`]);
    const big = secretFile('x'.repeat(70_000));
    expect(problems({ DATABASE_URL_FILE: big })).toEqual([
      `DATABASE_URL_FILE: ${big} is larger than 64 KiB; it should hold only the value of DATABASE_URL`,
    ]);
    if (process.getuid?.() !== 0) {
      const locked = secretFile('volcengine-secret-locked-away');
      chmodSync(locked, 0o000);
      const found = problems({ VOLCENGINE_ACCESS_KEY: 'AKLTx', VOLCENGINE_SECRET_KEY_FILE: locked });
      expect(found).toContain(`VOLCENGINE_SECRET_KEY_FILE: cannot read ${locked} (EACCES)`);
      expect(found.join('\n')).not.toContain('locked-away');
    }
  });

  it('what a file holds is validated like the variable, and not echoed', () => {
    const found = problems({ DATABASE_URL_FILE: secretFile('mysql://u:hunter2@db/x') });
    expect(found).toEqual(['DATABASE_URL: must be a postgres:// or postgresql:// URL']);
    expect(problems({ SCIM_BEARER_TOKENS_FILE: secretFile('short') })).toEqual([
      'SCIM_BEARER_TOKENS: every SCIM bearer token must be at least 16 characters long',
    ]);
  });

  it('an empty NAME_FILE counts as unset', () => {
    expect(loadConfig({ ADMIN_TOKENS_FILE: ' ' }, () => 'generated-token-0123456789').adminTokens).toEqual(
      [],
    );
  });

  it('main.ts refuses to start (exit 2) on an unreadable secret file, naming it', async () => {
    const missing = join(dir, 'no-such-secret');
    const run = await runMain([], { SCIM_BEARER_TOKENS_FILE: missing, DATA_DIR: join(dir, 'data') });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`SCIM_BEARER_TOKENS_FILE: cannot read ${missing} (ENOENT)`);
  });

  it('npm run store reads DATABASE_URL_FILE too, and refuses an unreadable one (exit 2)', () => {
    const missing = join(dir, 'no-such-url');
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/store-cli.ts', 'copy'], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL_FILE: missing, DATA_DIR: join(dir, 'none') },
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`DATABASE_URL_FILE: cannot read ${missing} (ENOENT)`);
  });
});
