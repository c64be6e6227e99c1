// A DATA_DIR written by the journal version (snapshot.json + journal.jsonl) is imported into
// bridge.sqlite once, in one transaction, and the old files are moved aside.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreSetupError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import { importLegacyJournal } from '../../src/store/legacy-journal-import.js';
import { prepareDatabase } from '../../src/store/sqlite-store.js';
import type { BridgeStore, GroupRecord, UserRecord } from '../../src/store/types.js';

const root = await mkdtemp(join(tmpdir(), 'legacy-journal-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;

function user(i: number, over: Partial<UserRecord> = {}): UserRecord {
  const t = `2025-06-0${1 + (i % 9)}T10:00:0${i % 10}.${String(100 + i).slice(-3)}Z`;
  return {
    scimId: `0000000${i}-aaaa-4bbb-8ccc-00000000000${i}`,
    upstreamUserId: `up-${i}`,
    userName: `User${i}@Example.com`,
    externalId: i % 2 ? `ext-${i}` : null,
    active: true,
    state: 'ready',
    attributes: {
      userName: `User${i}@Example.com`,
      name: { givenName: 'Ädа', familyName: `L${i}` },
      emails: [{ value: `u${i}@x`, primary: true }],
    },
    tombstoneGroupIds: [],
    version: 1,
    createdAt: t,
    updatedAt: t,
    ...over,
  };
}

function group(i: number, over: Partial<GroupRecord> = {}): GroupRecord {
  return {
    scimId: `grp-${i}`,
    groupName: `scim-group-${i}`,
    displayName: `Group ${i}`,
    externalId: null,
    attributes: { displayName: `Group ${i}` },
    version: 1,
    createdAt: '2025-05-01T00:00:00.000Z',
    updatedAt: '2025-05-01T00:00:00.000Z',
    ...over,
  };
}

/** A journal-version DATA_DIR: a snapshot at seq 5, then 9 journal lines (3 older than the snapshot). */
function writeLegacy(dataDir: string, options: { tornTail?: boolean } = {}) {
  const snapshotUsers = [
    user(1),
    user(2),
    user(3, { active: false, upstreamUserId: null, tombstoneGroupIds: ['grp-1'] }),
  ];
  const snapshot = {
    format: 'volc-scim-bridge/embedded-store-snapshot',
    version: 1,
    seq: 5,
    users: snapshotUsers,
    groups: [group(1), group(2)],
    memberships: [
      ['grp-1', snapshotUsers[0].scimId],
      ['grp-1', snapshotUsers[1].scimId],
      ['grp-2', snapshotUsers[1].scimId],
    ],
  };
  const updated2 = user(2, {
    userName: 'renamed@example.com',
    version: 3,
    updatedAt: '2025-07-01T00:00:00.000Z',
  });
  const entries = [
    // Older than the snapshot (left by a crash between snapshot and journal rewrite): skipped.
    { seq: 3, op: 'putUser', user: user(9) },
    { seq: 4, op: 'deleteUser', scimId: snapshotUsers[0].scimId },
    { seq: 5, op: 'putGroup', group: group(9) },
    { seq: 6, op: 'putUser', user: user(4) },
    { seq: 7, op: 'putUser', user: updated2 },
    { seq: 8, op: 'addMembership', group: 'grp-2', user: user(4).scimId },
    { seq: 9, op: 'removeMembership', group: 'grp-1', user: snapshotUsers[1].scimId },
    { seq: 10, op: 'deleteUser', scimId: snapshotUsers[0].scimId },
    {
      seq: 11,
      op: 'putGroup',
      group: group(2, { displayName: 'Ops Team', version: 2, updatedAt: '2025-07-02T00:00:00.000Z' }),
    },
    { seq: 12, op: 'putGroup', group: group(3) },
    { seq: 13, op: 'deleteGroup', scimId: 'grp-3' },
  ];
  let text = entries.map((e) => `${JSON.stringify(e)}\n`).join('');
  if (options.tornTail) text += '{"seq":14,"op":"putUs';
  writeFileSync(join(dataDir, 'snapshot.json'), JSON.stringify(snapshot));
  writeFileSync(join(dataDir, 'journal.jsonl'), text);
  writeFileSync(join(dataDir, 'volc-scim-bridge.lock'), 'oldhost 123');
  return {
    users: [
      user(3, { active: false, upstreamUserId: null, tombstoneGroupIds: ['grp-1'] }),
      updated2,
      user(4),
    ],
    groups: [
      group(1),
      group(2, { displayName: 'Ops Team', version: 2, updatedAt: '2025-07-02T00:00:00.000Z' }),
    ],
    memberships: new Map([
      [updated2.scimId, ['grp-2']],
      [user(4).scimId, ['grp-2']],
    ]),
  };
}

async function expectState(store: BridgeStore, expected: ReturnType<typeof writeLegacy>) {
  const sorted = [...expected.users].sort((a, b) =>
    a.createdAt === b.createdAt ? (a.scimId < b.scimId ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1,
  );
  expect(await store.listUsers({}, 0, 100)).toEqual(sorted);
  for (const u of expected.users) {
    expect(await store.getUser(u.scimId)).toEqual(u);
    expect(await store.findUserByUserName(u.userName.toUpperCase())).toEqual(u);
  }
  expect(await store.getUser(user(1).scimId)).toBeNull();
  expect(await store.getUser(user(9).scimId)).toBeNull();
  expect(await store.getGroups(['grp-1', 'grp-2', 'grp-3', 'grp-9'])).toEqual(
    new Map(expected.groups.map((g) => [g.scimId, g])),
  );
  expect(await store.findGroupByDisplayName('ops team')).toEqual(expected.groups[1]);
  expect(await store.groupsOfUsers([...expected.users.map((u) => u.scimId), user(1).scimId])).toEqual(
    expected.memberships,
  );
}

describe('import of a journal-version DATA_DIR', () => {
  it('imports snapshot and journal once, compares every record, and moves the old files aside', async () => {
    const dataDir = join(root, `d${++n}`);
    await rm(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir);
    const expected = writeLegacy(dataDir, { tornTail: true });
    const store = await openStore({ dataDir });
    try {
      await expectState(store, expected);
    } finally {
      await store.close();
    }
    expect(existsSync(join(dataDir, 'snapshot.json'))).toBe(false);
    expect(existsSync(join(dataDir, 'journal.jsonl'))).toBe(false);
    const aside = readdirSync(dataDir).filter((f) => f.startsWith('imported-journal-store-'));
    expect(aside).toHaveLength(1);
    expect(readdirSync(join(dataDir, aside[0])).sort()).toEqual([
      'journal.jsonl',
      'snapshot.json',
      'volc-scim-bridge.lock',
    ]);
    expect(await readFile(join(dataDir, aside[0], 'journal.jsonl'), 'utf8')).toMatch(/"seq":14,"op":"putUs$/);
    // Reopening imports nothing again and shows the same state.
    const again = await openStore({ dataDir });
    try {
      await expectState(again, expected);
    } finally {
      await again.close();
    }
  });

  it('imports again on the next start when the import transaction did not commit', async () => {
    const dataDir = join(root, `d${++n}`);
    mkdirSync(dataDir);
    const expected = writeLegacy(dataDir);
    // A crash inside the transaction: simulated by a record that fails mid-import, after some rows.
    const db = new Database(join(dataDir, 'bridge.sqlite'));
    prepareDatabase(db);
    db.exec(`CREATE TRIGGER fail_import BEFORE INSERT ON groups WHEN NEW.scim_id = 'grp-3'
      BEGIN SELECT RAISE(ABORT, 'simulated crash'); END`);
    expect(() => importLegacyJournal(db, dataDir)).toThrow(StoreSetupError);
    expect(db.prepare('SELECT count(*) AS n FROM users').get()).toEqual({ n: 0 });
    db.exec('DROP TRIGGER fail_import');
    db.close();
    expect(existsSync(join(dataDir, 'snapshot.json'))).toBe(true);
    expect(existsSync(join(dataDir, 'journal.jsonl'))).toBe(true);

    const store = await openStore({ dataDir });
    try {
      await expectState(store, expected);
    } finally {
      await store.close();
    }
  });

  it('after a crash between the commit and the move, only moves the files (no double import)', async () => {
    const dataDir = join(root, `d${++n}`);
    mkdirSync(dataDir);
    const expected = writeLegacy(dataDir);
    const db = new Database(join(dataDir, 'bridge.sqlite'));
    prepareDatabase(db);
    expect(() =>
      importLegacyJournal(db, dataDir, undefined, {
        afterCommit: () => {
          throw new Error('crash after commit');
        },
      }),
    ).toThrow('crash after commit');
    db.close();
    expect(existsSync(join(dataDir, 'journal.jsonl'))).toBe(true);
    const store = await openStore({ dataDir });
    try {
      await expectState(store, expected);
    } finally {
      await store.close();
    }
    expect(existsSync(join(dataDir, 'journal.jsonl'))).toBe(false);
  });

  it('refuses a corrupt journal line before the last, changing nothing', async () => {
    const dataDir = join(root, `d${++n}`);
    mkdirSync(dataDir);
    writeLegacy(dataDir);
    const journal = await readFile(join(dataDir, 'journal.jsonl'), 'utf8');
    const lines = journal.split('\n');
    lines[4] = '{"seq":7,"op":"putUser","user":{"sci';
    writeFileSync(join(dataDir, 'journal.jsonl'), lines.join('\n'));
    const err = await openStore({ dataDir }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreSetupError);
    expect((err as Error).message).toMatch(
      /journal store of an earlier version that could not be imported: journal\.jsonl line 5 is corrupt/,
    );
    expect(existsSync(join(dataDir, 'journal.jsonl'))).toBe(true);
  });
});
