import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_ACCESS_KEY } from '../../src/emulator/index.js';
import { call, ok } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

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
  // Same as `npx tsx src/emulator/main.ts`, without npx's extra process in the signal path.
  const child = spawn(tsx, ['src/emulator/main.ts'], {
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
});
