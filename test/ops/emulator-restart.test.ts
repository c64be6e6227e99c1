import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { silentLogger, TEST_TOKEN, testConfig } from './helpers.js';

// `npm start` without Volcengine credentials, stopped and started again on the same DATA_DIR: the
// in-process emulator must still hold what the store remembers. Checked over HTTP only, so the test
// holds whatever the store is built on.

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

// biome-ignore lint/suspicious/noExplicitAny: SCIM bodies are inspected ad hoc
type Json = any;

async function scim(bridge: RunningBridge, method: string, path: string, body?: unknown) {
  const res = await fetch(`${bridge.url}/scim/v2${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${TEST_TOKEN}`,
      ...(body !== undefined ? { 'Content-Type': 'application/scim+json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Json };
}

describe('the in-process emulator across a restart on the same DATA_DIR', () => {
  let dataDir: string | undefined;
  const bridges: RunningBridge[] = [];
  afterEach(async () => {
    for (const b of bridges.splice(0)) await b.close().catch(() => {});
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  });
  const start = async (dir: string) => {
    // No VOLCENGINE_* and no DATABASE_URL: the in-process emulator and the embedded store.
    const bridge = await startBridge(
      // A fixed public URL, so meta.location and $ref do not change with the listening port.
      testConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dir,
        PUBLIC_BASE_URL: 'https://scim.example.test',
        SHUTDOWN_GRACE_MS: '2000',
      }),
      silentLogger,
    );
    bridges.push(bridge);
    return bridge;
  };
  const stop = async (bridge: RunningBridge) => {
    bridges.splice(bridges.indexOf(bridge), 1);
    await bridge.close();
  };

  it('serves the same users, ids and group members after a restart, and refuses a second bridge', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'bridge-emu-restart-'));
    const first = await start(dataDir);
    expect(first.emulator).toBeDefined();

    const alice = await scim(first, 'POST', '/Users', {
      schemas: [USER],
      userName: 'alice@example.com',
      displayName: 'Alice Example',
      externalId: 'ext-alice',
      emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
    });
    expect(alice.status).toBe(201);
    const bob = await scim(first, 'POST', '/Users', { schemas: [USER], userName: 'bob@example.com' });
    expect(bob.status).toBe(201);
    const team = await scim(first, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Restart Team',
      members: [{ value: alice.json.id }],
    });
    expect(team.status).toBe(201);
    const patched = await scim(first, 'PATCH', `/Users/${bob.json.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'displayName', value: 'Bob Renamed' }],
    });
    expect(patched.status).toBe(200);

    const usersBefore = await scim(first, 'GET', '/Users?sortBy=userName');
    const aliceBefore = await scim(first, 'GET', `/Users/${alice.json.id}`);
    const bobBefore = await scim(first, 'GET', `/Users/${bob.json.id}`);
    const teamBefore = await scim(first, 'GET', `/Groups/${team.json.id}`);
    expect(usersBefore.json.totalResults).toBe(2);
    expect(teamBefore.json.members.map((m: Json) => m.value)).toEqual([alice.json.id]);
    await stop(first);
    expect(existsSync(join(dataDir, 'emulator.sqlite'))).toBe(true);

    const second = await start(dataDir);
    const usersAfter = await scim(second, 'GET', '/Users?sortBy=userName');
    expect(usersAfter.status).toBe(200);
    expect(usersAfter.json.totalResults).toBe(2);
    expect(usersAfter.json).toEqual(usersBefore.json);
    const aliceAfter = await scim(second, 'GET', `/Users/${alice.json.id}`);
    expect(aliceAfter.status).toBe(200);
    expect(aliceAfter.json).toEqual(aliceBefore.json);
    const bobAfter = await scim(second, 'GET', `/Users/${bob.json.id}`);
    expect(bobAfter.json).toEqual(bobBefore.json);
    expect(bobAfter.json.displayName).toBe('Bob Renamed');
    const teamAfter = await scim(second, 'GET', `/Groups/${team.json.id}`);
    expect(teamAfter.status).toBe(200);
    expect(teamAfter.json).toEqual(teamBefore.json);
    const byName = await scim(second, 'GET', '/Users?filter=userName%20eq%20%22ALICE@example.com%22');
    expect(byName.json.Resources.map((r: Json) => r.id)).toEqual([alice.json.id]);

    // The restored emulator keeps working: membership changes and a new user with a new id.
    const added = await scim(second, 'PATCH', `/Groups/${team.json.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: bob.json.id }] }],
    });
    expect([200, 204]).toContain(added.status);
    const carol = await scim(second, 'POST', '/Users', { schemas: [USER], userName: 'carol@example.com' });
    expect(carol.status).toBe(201);
    expect([alice.json.id, bob.json.id]).not.toContain(carol.json.id);
    const dup = await scim(second, 'POST', '/Users', { schemas: [USER], userName: 'Alice@Example.com' });
    expect(dup.status).toBe(409);

    // A second bridge on the same DATA_DIR while this one runs is refused, naming DATA_DIR.
    await expect(start(dataDir)).rejects.toThrow(/DATA_DIR/);

    await stop(second);
    const third = await start(dataDir);
    const teamLast = await scim(third, 'GET', `/Groups/${team.json.id}`);
    expect(teamLast.json.members.map((m: Json) => m.value).sort()).toEqual(
      [alice.json.id, bob.json.id].sort(),
    );
    expect((await scim(third, 'GET', '/Users')).json.totalResults).toBe(3);
  }, 60_000);
});
