import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_ACCESS_KEY } from '../../src/emulator/index.js';
import { call, ok } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Started {
  child: ChildProcess;
  url: string;
  logs: Record<string, unknown>[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function run(env: Record<string, string>): {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Started['exit'];
} {
  // Same as `npx tsx src/emulator/main.ts`, with no npx or tsx parent process in the signal path
  // (a SIGKILL must reach the emulator itself, not a wrapper that leaves it running).
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/emulator/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function start(env: Record<string, string>): Promise<Started> {
  const p = run({ EMULATOR_PORT: '0', ...env });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const logs = p
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = logs.find((l) => l.msg === 'CloudIdentity emulator listening');
    if (ready) return { child: p.child, url: ready.url as string, logs, exit: p.exit };
    if (p.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`emulator did not start:\n${p.stdout()}\n${p.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('standalone main', () => {
  it('starts with the dev credentials, logs JSON, answers a signed request, exits 0 on SIGTERM', async () => {
    const s = await start({ EMULATOR_SEED_USERS: '25' });
    const ready = s.logs.find((l) => l.msg === 'CloudIdentity emulator listening')!;
    expect(ready).toMatchObject({
      level: 30,
      accessKeyId: DEV_ACCESS_KEY,
      region: 'cn-beijing',
      seededUsers: 25,
    });
    expect(s.logs.some((l) => l.level === 40 && String(l.msg).includes('dev credentials'))).toBe(true);
    expect(JSON.stringify(s.logs)).not.toContain('emulator-dev-secret-key');

    const r = await ok(call(s.url, 'ListUsers', { PageSize: 100 }, { method: 'GET' }));
    expect(r.Total).toBe(25);
    await ok(call(s.url, 'CreateUser', { UserName: 'from-test' }));

    s.child.kill('SIGTERM');
    expect(await s.exit).toEqual({ code: 0, signal: null });
  });

  it('uses the configured key pair and region, and exits 0 on SIGINT', async () => {
    const s = await start({
      VOLCENGINE_ACCESS_KEY: 'AKLTstandalone',
      VOLCENGINE_SECRET_KEY: 'standalone-secret',
      VOLCENGINE_REGION: 'cn-guangzhou',
      EMULATOR_FAULTS: '[{"action":"GetUser","probability":1,"fault":"InternalError"}]',
    });
    const creds = { accessKeyId: 'AKLTstandalone', secretKey: 'standalone-secret', region: 'cn-guangzhou' };
    const r = await call(s.url, 'ListUsers', {}, { credentials: creds });
    expect(r.status).toBe(200);
    expect(r.json.ResponseMetadata.Region).toBe('cn-guangzhou');
    expect((await call(s.url, 'GetUser', { UserId: 'x' }, { credentials: creds })).status).toBe(500);
    expect((await call(s.url, 'ListUsers')).status).toBe(400); // dev pair, wrong region scope
    s.child.kill('SIGINT');
    expect(await s.exit).toEqual({ code: 0, signal: null });
  });

  it('refuses bad configuration with one message listing every problem and exit code 1', async () => {
    const p = run({ EMULATOR_PORT: 'x', EMULATOR_USER_QUOTA: '-1', EMULATOR_FAULTS: 'nope' });
    const { code } = await p.exit;
    expect(code).toBe(1);
    const msg = p.stderr();
    expect(msg).toContain('Invalid emulator configuration:');
    expect(msg).toMatch(/EMULATOR_PORT:/);
    expect(msg).toMatch(/EMULATOR_USER_QUOTA:/);
    expect(msg).toMatch(/EMULATOR_FAULTS:/);
  });

  it('keeps its state in EMULATOR_STATE_FILE across a SIGKILL, seeds only an empty file, refuses a bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emu-main-'));
    try {
      const file = join(dir, 'state.sqlite');
      const env = { EMULATOR_STATE_FILE: file, EMULATOR_SEED_USERS: '3' };
      const first = await start(env);
      expect(first.logs.find((l) => l.msg === 'CloudIdentity emulator listening')).toMatchObject({
        stateFile: file,
        seededUsers: 3,
        restored: { users: 0, groups: 0, memberships: 0 },
      });
      const u = await ok(call(first.url, 'CreateUser', { UserName: 'acknowledged' }));
      // No clean shutdown: an acknowledged write must already be in the file.
      first.child.kill('SIGKILL');
      await first.exit;

      const second = await start(env);
      expect(second.logs.find((l) => l.msg === 'CloudIdentity emulator listening')).toMatchObject({
        seededUsers: 0,
        restored: { users: 4, groups: 0, memberships: 0 },
      });
      const r = await ok(call(second.url, 'ListUsers', { PageSize: 100 }));
      expect(r.Users.map((x: { UserName: string }) => x.UserName)).toEqual([
        'seed-user-1',
        'seed-user-2',
        'seed-user-3',
        'acknowledged',
      ]);
      expect(r.Users[3].UserId).toBe(u.UserId);
      second.child.kill('SIGTERM');
      expect(await second.exit).toEqual({ code: 0, signal: null });

      const junk = join(dir, 'junk.sqlite');
      writeFileSync(junk, 'not a database at all, just text. '.repeat(100));
      const bad = run({ EMULATOR_PORT: '0', EMULATOR_STATE_FILE: junk });
      expect((await bad.exit).code).toBe(1);
      expect(bad.stderr()).toMatch(/^emulator state file .*junk\.sqlite is not a readable SQLite database/);
      expect(bad.stderr()).not.toMatch(/\n\s+at /); // one line, no stack
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
