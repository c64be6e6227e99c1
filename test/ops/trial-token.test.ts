// A trial (no Volcengine credentials, no SCIM_BEARER_TOKENS) keeps its generated SCIM token in
// DATA_DIR, so the IdP configured against it keeps working after a restart.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import { TRIAL_TOKEN_FILE } from '../../src/trial-token.js';
import { silentLogger } from './helpers.js';
import { httpRequest, spawnBridge } from './process.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'trial-token-'));
  dirs.push(d);
  return d;
};

let generated = 0;
async function start(dataDir: string, env: Record<string, string> = {}): Promise<RunningBridge> {
  const config = loadConfig(
    { PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, RECONCILE_INTERVAL_MS: '0', ...env },
    () => `generated-token-${generated++}-0123456789`,
  );
  return startBridge(config, silentLogger);
}

const users = (bridge: RunningBridge, token: string) =>
  fetch(`${bridge.url}/scim/v2/Users?count=1`, { headers: { Authorization: `Bearer ${token}` } });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the trial SCIM token', () => {
  it('is generated once, kept in DATA_DIR/scim-token (0600), and the same after a restart', async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    const token = first.config.scimTokens[0];
    try {
      expect(first.trialToken).toEqual({ token, file: join(dataDir, TRIAL_TOKEN_FILE), created: true });
      expect(readFileSync(join(dataDir, TRIAL_TOKEN_FILE), 'utf8')).toBe(`${token}\n`);
      expect(statSync(join(dataDir, TRIAL_TOKEN_FILE)).mode & 0o777).toBe(0o600);
      expect((await users(first, token)).status).toBe(200);
    } finally {
      await first.close();
    }
    const second = await start(dataDir);
    try {
      expect(second.trialToken).toMatchObject({ token, created: false });
      expect((await users(second, token)).status).toBe(200);
      // The token loadConfig generated for this start is not accepted: only the kept one is.
      expect((await users(second, `generated-token-${generated - 1}-0123456789`)).status).toBe(401);
    } finally {
      await second.close();
    }
  });

  it('a file that holds no token is replaced by a new one', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, TRIAL_TOKEN_FILE), 'short\n');
    const bridge = await start(dataDir);
    try {
      expect(bridge.trialToken?.created).toBe(true);
      expect(readFileSync(join(dataDir, TRIAL_TOKEN_FILE), 'utf8').trim()).toBe(bridge.config.scimTokens[0]);
    } finally {
      await bridge.close();
    }
  });

  it('is not kept when SCIM_BEARER_TOKENS is set', async () => {
    const dataDir = tempDir();
    const bridge = await start(dataDir, { SCIM_BEARER_TOKENS: 'configured-token-0123456789' });
    try {
      expect(bridge.trialToken).toBeUndefined();
      expect(() => statSync(join(dataDir, TRIAL_TOKEN_FILE))).toThrow(/ENOENT/);
    } finally {
      await bridge.close();
    }
  });
});

describe('the in-process emulator port (EMULATOR_PORT)', () => {
  it('listens where EMULATOR_PORT says; a port in use is refused naming the variable', async () => {
    const port = await freePort();
    const bridge = await start(tempDir(), { EMULATOR_PORT: String(port) });
    try {
      expect(bridge.emulator?.url).toBe(`http://127.0.0.1:${port}`);
      await expect(start(tempDir(), { EMULATOR_PORT: String(port) })).rejects.toThrow(
        `EMULATOR_PORT: port ${port} is in use; choose another, or 0 for any free port`,
      );
    } finally {
      await bridge.close();
    }
  });
});

describe('the start-up output of main.ts', () => {
  it('names the console URL when ADMIN_TOKENS is set, and where the trial token is kept', async () => {
    const proc = await spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      SCIM_BEARER_TOKENS: '',
      ADMIN_TOKENS: 'console-admin-token-0123456789',
      PUBLIC_BASE_URL: 'https://scim.example.test',
    });
    try {
      const line = proc.lines.find((l) => l.msg === 'volc-scim-bridge listening');
      expect(line).toMatchObject({
        url: 'https://scim.example.test/scim/v2',
        console: 'https://scim.example.test/admin/',
      });
      expect(proc.stderr()).toMatch(
        /SCIM_BEARER_TOKENS is not set\. Generated a token, kept in .*scim-token/,
      );
      const token = /\n {4}(\S+)\n/.exec(proc.stderr())?.[1];
      expect(token).toBeDefined();
      // Never in the log stream.
      expect(JSON.stringify(proc.lines)).not.toContain(token);
      expect((await httpRequest(proc.port, 'GET', '/scim/v2/Users?count=1', { token })).status).toBe(200);
    } finally {
      await proc.cleanup();
    }
  });

  it('says nothing of a console when ADMIN_TOKENS is unset', async () => {
    const proc = await spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], {});
    try {
      const line = proc.lines.find((l) => l.msg === 'volc-scim-bridge listening');
      expect(line).toBeDefined();
      expect(line).not.toHaveProperty('console');
    } finally {
      await proc.cleanup();
    }
  });
});
