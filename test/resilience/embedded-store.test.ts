// The embedded store (SQLite in DATA_DIR) under real processes: a SIGKILL mid-load loses no
// acknowledged write, and a second bridge on the same DATA_DIR (same host, or another hostname as a
// second container on a shared volume would have) is refused while the first keeps serving.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { ChildBridge, freePort, SOAK_TOKEN } from './bridges.js';

const root = await mkdtemp(join(tmpdir(), 'embedded-store-process-'));
let emulator: RunningEmulator;
const bridges: ChildBridge[] = [];
afterAll(async () => {
  for (const b of bridges) await b.kill();
  await emulator?.close();
  await rm(root, { recursive: true, force: true });
});

async function json(bridge: ChildBridge, method: string, path: string, body?: unknown) {
  const res = await fetch(`${bridge.scimUrl}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${SOAK_TOKEN}`,
      ...(body ? { 'Content-Type': 'application/scim+json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function newBridge(dataDir: string): Promise<ChildBridge> {
  emulator ??= await startEmulator({ port: 0 });
  const bridge = new ChildBridge({
    port: await freePort(),
    emulatorUrl: emulator.url,
    env: { DATA_DIR: dataDir, LOG_LEVEL: 'info' },
  });
  bridges.push(bridge);
  await bridge.start();
  return bridge;
}

/** Runs a second bridge on `dataDir` to its exit; `wrap` runs it under another command (unshare). */
function secondBridge(
  dataDir: string,
  port: number,
  wrap?: (node: string[]) => string[],
  options: { credentials?: boolean; stopWhenListening?: boolean } = {},
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const node = [process.execPath, '--import', 'tsx', 'src/main.ts'];
  const argv = wrap ? wrap(node) : node;
  const child = spawn(argv[0], argv.slice(1), {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      SCIM_BEARER_TOKENS: SOAK_TOKEN,
      ...(options.credentials === false
        ? {}
        : {
            VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
            VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
            VOLCENGINE_ENDPOINT: emulator.url,
          }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.on('data', (d) => {
    stdout += d;
    if (options.stopWhenListening && stdout.includes('"volc-scim-bridge listening"')) child.kill('SIGTERM');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    }),
  );
}

describe('embedded store under real processes', () => {
  it('loses no acknowledged write when the bridge is SIGKILLed mid-load', async () => {
    const dataDir = join(root, 'crash');
    const bridge = await newBridge(dataDir);
    const acknowledged = new Map<string, string>();
    let stop = false;
    let killing = false;
    let n = 0;
    const worker = async (w: number) => {
      while (!stop) {
        const userName = `crash-${w}-${n++}@example.com`;
        try {
          const created = await json(bridge, 'POST', '/Users', {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
            userName,
            externalId: `ext-${userName}`,
          });
          if (created.status === 201) acknowledged.set(String(created.body.id), userName);
          else if (created.status !== 409) throw new Error(`POST answered ${created.status}`);
        } catch (err) {
          // The kill cuts requests in flight: those were never acknowledged.
          if (killing) return;
          throw err;
        }
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    while (acknowledged.size < 60) await new Promise((r) => setTimeout(r, 20));
    killing = true;
    await bridge.kill();
    stop = true;
    await Promise.allSettled(workers);
    const before = acknowledged.size;
    expect(before).toBeGreaterThanOrEqual(60);

    await bridge.start();
    let lost = 0;
    for (const [id, userName] of acknowledged) {
      const read = await json(bridge, 'GET', `/Users/${id}`);
      if (
        read.status !== 200 ||
        read.body.userName !== userName ||
        read.body.externalId !== `ext-${userName}`
      ) {
        lost++;
      }
    }
    expect(lost, `${lost} of ${before} acknowledged creates lost`).toBe(0);
    await bridge.stop();
  }, 180_000);

  it('main.ts flags: a DATA_DIR used with the in-process emulator refuses real credentials until --rebind-store; a lost database until --accept-empty-store', async () => {
    emulator ??= await startEmulator({ port: 0 });
    const dataDir = join(root, 'rebind');
    // First start without credentials: the in-process emulator; SIGTERM once it listens.
    const trial = await secondBridge(dataDir, await freePort(), undefined, {
      credentials: false,
      stopWhenListening: true,
    });
    expect(trial.code, trial.stderr).toBe(0);

    const refused = await secondBridge(dataDir, await freePort());
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('mirrors the in-process CloudIdentity emulator');
    expect(refused.stderr).toContain(`configured for CloudIdentity at ${emulator.url}`);
    expect(refused.stderr).toContain('--rebind-store');
    expect(refused.stderr).not.toContain(DEV_SECRET_KEY);

    const rebound = await secondBridge(dataDir, await freePort(), (node) => [...node, '--rebind-store'], {
      stopWhenListening: true,
    });
    expect(rebound.code, rebound.stderr).toBe(0);
    expect(rebound.stdout).toContain('--rebind-store: the store in DATA_DIR');
    // Bound to the new one from now on: a plain start is accepted.
    const plain = await secondBridge(dataDir, await freePort(), undefined, { stopWhenListening: true });
    expect(plain.code, plain.stderr).toBe(0);

    // The database file gone, the marker left: refused, then accepted with --accept-empty-store.
    for (const f of ['bridge.sqlite', 'bridge.sqlite-wal', 'bridge.sqlite-shm']) {
      await rm(join(dataDir, f), { force: true });
    }
    const lost = await secondBridge(dataDir, await freePort());
    expect(lost.code).not.toBe(0);
    expect(lost.stderr).toMatch(
      /DATA_DIR: .*bridge\.sqlite is missing, but .* says a store .* was created here/,
    );
    const accepted = await secondBridge(
      dataDir,
      await freePort(),
      (node) => [...node, '--accept-empty-store'],
      {
        stopWhenListening: true,
      },
    );
    expect(accepted.code, accepted.stderr).toBe(0);
  }, 180_000);

  it('refuses a second bridge on the same DATA_DIR (same host, then another hostname); the first keeps serving', async () => {
    const dataDir = join(root, 'shared');
    // A new store facing the users earlier tests left in the emulator would refuse its first start.
    emulator?.reset();
    const first = await newBridge(dataDir);
    const created = await json(first, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'first@example.com',
    });
    expect(created.status).toBe(201);

    const same = await secondBridge(dataDir, await freePort());
    expect(same.code).not.toBe(0);
    expect(same.stderr).toContain(
      `DATA_DIR ${dataDir} is in use by another bridge process (held by pid ${first.pid} on host ${hostname()}`,
    );
    expect(same.stderr).toContain('run one bridge per DATA_DIR, or set DATABASE_URL');

    const unshare = spawnSync('unshare', ['--uts', 'true']);
    if (unshare.status !== 0) {
      console.warn(
        `[skip] different-hostname variant: unshare --uts is unavailable (${unshare.error?.message ?? unshare.stderr.toString().trim()})`,
      );
    } else {
      const other = await secondBridge(dataDir, await freePort(), (node) => [
        'unshare',
        '--uts',
        'sh',
        '-c',
        'hostname other-container && echo "hostname: $(hostname)" >&2 && exec "$@"',
        'sh',
        ...node,
      ]);
      expect(other.stderr).toContain('hostname: other-container');
      expect(other.code).not.toBe(0);
      expect(other.stderr).toContain(`DATA_DIR ${dataDir} is in use by another bridge process`);
    }

    // The first bridge still reads and writes.
    const read = await json(first, 'GET', `/Users/${created.body.id}`);
    expect(read.status).toBe(200);
    const more = await json(first, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'second@example.com',
    });
    expect(more.status).toBe(201);
    await first.stop();
  }, 180_000);
});
