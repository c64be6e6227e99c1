// Issue 11: a real bridge process SIGKILLed in the middle of a multi-step operation (the emulator
// holds its upstream call with a latency fault, so the intent is committed and the operation in
// flight), then restarted on the same store: its reconciler settles the intent and I1–I3, I5 hold.
// Embedded store (same DATA_DIR) and PostgreSQL (same schema).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { GROUP_SCHEMA } from '../../src/scim-model/schemas.js';
import { waitUntil } from '../helpers/api-gate.js';
import type { Harness } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { type BridgeProcess, spawnBridge } from '../ops/process.js';
import { expectInvariants } from './consistency-support.js';
import { patchBody, uniqueName, userBody } from './users-support.js';

const TOKEN = 'test-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const pg = await freshPostgresUrl('crash');

let emulator: RunningEmulator;
beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
});
afterAll(async () => {
  await emulator?.close();
  if (!('skip' in pg)) await pg.drop();
});

/** The SCIM side of a bridge process, shaped like the harness for expectInvariants. */
function view(proc: BridgeProcess): Harness {
  return {
    http: supertest.agent(`http://127.0.0.1:${proc.port}`).set('Authorization', `Bearer ${TOKEN}`),
    async upstream() {
      return (await (await fetch(`${emulator.url}/_emulator/state`)).json()) as never;
    },
  } as unknown as Harness;
}

async function pendingIntents(proc: BridgeProcess): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${proc.port}/admin/api/reconciler`, {
    headers: { Authorization: `Bearer ${ADMIN}` },
  });
  return ((await res.json()) as { pendingIntents: number }).pendingIntents;
}

const calls = async (action: string) =>
  (
    (await (await fetch(`${emulator.url}/_emulator/state?summary=1`)).json()) as {
      calls: Record<string, number>;
    }
  ).calls[action] ?? 0;

const variants = [
  { name: 'embedded store', env: () => ({}) as Record<string, string> },
  ...('skip' in pg ? [] : [{ name: 'PostgreSQL', env: () => ({ DATABASE_URL: pg.url }) }]),
];

describe.each(variants)('SIGKILL mid-operation, restart ($name)', ({ env }) => {
  it('a deactivation and a reactivation killed in flight are settled by the restarted bridge', {
    timeout: 120_000,
  }, async () => {
    // Each variant's new store faces an empty CloudIdentity (a populated one would refuse its first start).
    emulator.reset();
    const dataDir = mkdtempSync(join(tmpdir(), 'bridge-crash-'));
    const bridgeEnv = {
      ...env(),
      DATA_DIR: dataDir,
      VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
      VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
      VOLCENGINE_ENDPOINT: emulator.url,
      ADMIN_TOKENS: ADMIN,
      RECONCILE_INTERVAL_MS: '200',
      UPSTREAM_ATTEMPT_TIMEOUT_MS: '60000',
    };
    const start = () => spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], bridgeEnv);
    let proc = await start();
    try {
      const h = view(proc);
      const users = [
        { userName: uniqueName('crash-deact'), id: '' },
        { userName: uniqueName('crash-react'), id: '' },
      ];
      for (const u of users) {
        const res = await h.http.post('/scim/v2/Users').send(userBody(u.userName));
        expect(res.status, res.text).toBe(201);
        u.id = res.body.id;
      }
      const group = await h.http.post('/scim/v2/Groups').send({
        schemas: [GROUP_SCHEMA],
        displayName: uniqueName('crash-g', 'g'),
        members: [{ value: users[1].id }],
      });
      expect(group.status, group.text).toBe(201);
      const deactivate = (id: string, active: boolean) =>
        h.http
          .patch(`/scim/v2/Users/${id}`)
          .send(patchBody({ op: 'replace', path: 'active', value: active }));
      expect((await deactivate(users[1].id, false)).status).toBe(200);

      // Hold DeleteUser (deactivation of user 0) and AddUserToGroup (reactivation of user 1) upstream.
      emulator.setFaults([
        { action: 'DeleteUser', probability: 1, fault: 'latency', latencyMs: 4_000, times: 1 },
        { action: 'AddUserToGroup', probability: 1, fault: 'latency', latencyMs: 4_000, times: 1 },
      ]);
      const deleteCalls = await calls('DeleteUser');
      const addCalls = await calls('AddUserToGroup');
      void deactivate(users[0].id, false).catch(() => undefined);
      void deactivate(users[1].id, true).catch(() => undefined);
      await waitUntil(
        async () => (await calls('DeleteUser')) > deleteCalls && (await calls('AddUserToGroup')) > addCalls,
        'both operations reached CloudIdentity',
      );
      expect(await pendingIntents(proc)).toBe(2);
      proc.child.kill('SIGKILL');
      await proc.exited;
      emulator.setFaults([]);

      proc = await start();
      await waitUntil(
        async () => (await pendingIntents(proc)) === 0,
        'the restarted bridge settled the intents',
      );
      const after = view(proc);
      await expectInvariants(after, users, [group.body.id]);
      expect((await after.http.get(`/scim/v2/Users/${users[0].id}`)).body.active).toBe(false);
      const reactivated = await after.http.get(`/scim/v2/Users/${users[1].id}`);
      expect(reactivated.body.active).toBe(true);
      expect(reactivated.body.groups.map((g: { value: string }) => g.value)).toEqual([group.body.id]);
    } finally {
      await proc.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('after SIGKILL mid-load, every account the bridge made is named in the trail and every 201 has its record', {
    timeout: 120_000,
  }, async () => {
    // A new store faces an empty CloudIdentity (a populated one needs --accept-empty-store).
    emulator.reset();
    const dataDir = mkdtempSync(join(tmpdir(), 'bridge-crash-load-'));
    const bridgeEnv = {
      ...env(),
      DATA_DIR: dataDir,
      VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
      VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
      VOLCENGINE_ENDPOINT: emulator.url,
      ADMIN_TOKENS: ADMIN,
      RECONCILE_INTERVAL_MS: '200',
    };
    const start = () => spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], bridgeEnv);
    let proc = await start();
    try {
      const h = view(proc);
      // Slow creates, so that several are between their pending record and their final commit.
      emulator.setFaults([{ action: 'CreateUser', probability: 1, fault: 'latency', latencyMs: 150 }]);
      const prefix = uniqueName('crash-load').split('@')[0];
      const acknowledged: Array<{ requestId: string; userName: string }> = [];
      let n = 0;
      let stop = false;
      const worker = async () => {
        while (!stop) {
          n++;
          const userName = `${prefix}-${n}@example.com`;
          const requestId = `crash-load-${n}`;
          try {
            const res = await h.http
              .post('/scim/v2/Users')
              .set('X-Request-Id', requestId)
              .send(userBody(userName));
            if (res.status === 201) acknowledged.push({ requestId, userName });
          } catch {
            // Cut off by the kill.
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      await waitUntil(async () => acknowledged.length >= 12, 'some creates were acknowledged');
      proc.child.kill('SIGKILL');
      stop = true;
      await proc.exited;
      await Promise.allSettled(workers);
      emulator.setFaults([]);

      proc = await start();
      const audit = async (resource: string) => {
        const res = await fetch(
          `http://127.0.0.1:${proc.port}/admin/api/audit?resource=${encodeURIComponent(resource)}&limit=50`,
          { headers: { Authorization: `Bearer ${ADMIN}` } },
        );
        return ((await res.json()) as { records: Array<{ requestId: string | null; status: number }> })
          .records;
      };
      const accounts = (await view(proc).upstream()).users.filter((u) => u.UserName.startsWith(`${prefix}-`));
      expect(accounts.length).toBeGreaterThanOrEqual(acknowledged.length);
      for (const account of accounts) {
        expect((await audit(account.UserName)).length, `${account.UserName} is named`).toBeGreaterThan(0);
      }
      for (const { requestId, userName } of acknowledged) {
        const records = (await audit(userName)).filter((r) => r.requestId === requestId && r.status !== 102);
        expect(
          records.map((r) => r.status),
          requestId,
        ).toEqual([201]);
      }
    } finally {
      await proc.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
