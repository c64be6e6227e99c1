// Upgrading from a version whose embedded store was PGlite: the first start imports everything from
// the PGlite cluster in DATA_DIR, once.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { openPGliteDriver } from '../../src/store/pglite-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import type { GroupRecord, UserRecord } from '../../src/store/types.js';
import { newGroup, newUser } from './contract.js';
import { seedPGliteDataDir } from './pglite-template.js';

const root = await mkdtemp(join(tmpdir(), 'legacy-import-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { logger, lines };
}

describe('import of a PGlite DATA_DIR from an earlier version', () => {
  it('imports every user, group and membership once, then uses only its own files', async () => {
    const dataDir = join(root, 'data');
    await seedPGliteDataDir(dataDir);
    // What an earlier version left: SqlStore on PGlite in DATA_DIR.
    const driver = await openPGliteDriver(dataDir);
    const legacy = new SqlStore(driver);
    await legacy.init();
    const users: UserRecord[] = [];
    users.push(await legacy.insertUser(newUser({ userName: 'Jörg@Example.com', externalId: 'ext-1' })));
    users.push(await legacy.insertUser(newUser({ upstreamUserId: null, state: 'pending' }))); // pending create
    // A tombstone: deactivated with DEACTIVATE_ACTION=delete, its groups remembered.
    const tomb = await legacy.insertUser(newUser({ active: false }));
    users.push(
      (await legacy.updateUser(tomb.scimId, { upstreamUserId: null, tombstoneGroupIds: ['g-x', 'g-y'] }))!,
    );
    const groups: GroupRecord[] = [];
    groups.push(await legacy.insertGroup(newGroup({ displayName: 'Engineering Ü', externalId: 'ext-g' })));
    groups.push(await legacy.insertGroup(newGroup()));
    await legacy.addMembership(groups[0].scimId, users[0].scimId);
    await legacy.addMembership(groups[1].scimId, users[0].scimId);
    await legacy.addMembership(groups[0].scimId, 'unmanaged-user');
    await driver.close();
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);

    const { logger, lines } = capture();
    const store = await openStore({ dataDir, logger });
    const check = async (s: typeof store, userCount: number) => {
      for (const u of users) expect(await s.getUser(u.scimId)).toEqual(u);
      for (const g of groups) expect(await s.getGroup(g.scimId)).toEqual(g);
      expect(await s.findUserByUserName('jörg@example.com')).toEqual(users[0]);
      expect(await s.findGroupByDisplayName('ENGINEERING ü')).toEqual(groups[0]);
      expect(await s.groupsOfUser(users[0].scimId)).toEqual([groups[0].scimId, groups[1].scimId].sort());
      expect(await s.groupsOfUser('unmanaged-user')).toEqual([groups[0].scimId]);
      expect(await s.listUsers({ detached: true }, 0, 10)).toEqual([users[1], users[2]]);
      expect(await s.countUsers({ state: 'pending' })).toBe(1);
      expect((s as MemoryStore).stats()).toMatchObject({ users: userCount, groups: 2, memberships: 3 });
    };
    try {
      expect(store).toBeInstanceOf(MemoryStore);
      await check(store, 3);
      const imported = lines.find((l) => String(l.msg).includes('imported the PGlite store'));
      expect(imported).toMatchObject({ dataDir, users: 3, groups: 2, memberships: 3 });
      expect(String(imported?.msg)).toMatch(/no longer used/);
      expect(existsSync(join(dataDir, 'snapshot.json'))).toBe(true);
      // New writes go to the journal.
      await store.insertUser(newUser());
    } finally {
      await store.close();
    }

    const second = capture();
    const reopened = await openStore({ dataDir, logger: second.logger });
    try {
      await check(reopened, 4);
      expect(second.lines.some((l) => String(l.msg).includes('import'))).toBe(false);
    } finally {
      await reopened.close();
    }
    // The PGlite files are left alone (for a backup or a downgrade).
    expect(await readdir(dataDir)).toEqual(expect.arrayContaining(['PG_VERSION', 'base', 'journal.jsonl']));
  });

  it('refuses to start when the PGlite cluster cannot be read, rather than start empty', async () => {
    const dataDir = join(root, 'broken');
    await seedPGliteDataDir(dataDir);
    await rm(join(dataDir, 'global'), { recursive: true, force: true });
    await expect(openStore({ dataDir })).rejects.toThrow(
      /PGlite store of an earlier version that could not be imported/,
    );
    expect(existsSync(join(dataDir, 'snapshot.json'))).toBe(false);
  });
});
