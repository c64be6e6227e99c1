// Durability of the embedded store: what is acknowledged is on disk, crashes at any point leave a
// loadable state, corruption is refused, failures make the store unavailable instead of lying.
import { closeSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreBrokenError } from '../../src/store/journal.js';
import { MemoryStore, type MemoryStoreOptions } from '../../src/store/memory-store.js';
import type { GroupRecord } from '../../src/store/types.js';
import { newGroup, newUser, sleep } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'journal-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => join(root, `d${++dirs}`);

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  );
  return { logger, lines };
}

const open = (dataDir: string, options: Omit<MemoryStoreOptions, 'dataDir'> = {}) =>
  MemoryStore.open({ dataDir, ...options });

/** Reads journal.jsonl as entries. */
function journalEntries(dataDir: string): Array<{ seq: number; op: string } & Record<string, unknown>> {
  const text = readFileSync(join(dataDir, 'journal.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/** A store with a few of every kind of record; returns the ids. */
async function populate(store: MemoryStore) {
  const a = await store.insertUser(newUser({ externalId: 'ext-a' }));
  const b = await store.insertUser(newUser({ upstreamUserId: null, state: 'pending' }));
  const g = await store.insertGroup(newGroup({ externalId: 'ext-g' }));
  await store.addMembership(g.scimId, a.scimId);
  await store.addMembership(g.scimId, b.scimId);
  await store.updateUser(b.scimId, { upstreamUserId: 'up-b', state: 'ready' }, 1);
  await store.updateGroup(g.scimId, { displayName: 'Renamed' });
  return { a, b, g };
}

/** The journal's internals a test may tamper with: its fd and its fdatasync. */
function journalOf(store: MemoryStore): { fd: number; datasync(fd: number): Promise<void> } {
  return (store as unknown as { journal: { fd: number; datasync(fd: number): Promise<void> } }).journal;
}

describe('journal', () => {
  it('acknowledges a write once its line is in journal.jsonl, one line per change, seq increasing by one', async () => {
    const dir = freshDir();
    const store = await open(dir);
    try {
      const u = await store.insertUser(newUser());
      expect(journalEntries(dir)).toEqual([{ seq: 1, op: 'putUser', user: u }]);
      const v2 = await store.updateUser(u.scimId, { active: false });
      await store.addMembership('g-1', u.scimId);
      await store.addMembership('g-1', u.scimId); // no change: no line
      await store.removeMembership('g-2', u.scimId); // no change: no line
      expect(await store.updateUser(u.scimId, { active: true }, 1)).toBeNull(); // stale: no line
      await store.removeMembership('g-1', u.scimId);
      expect(await store.deleteUser(u.scimId)).toBe(true);
      expect(await store.deleteUser(u.scimId)).toBe(false); // nothing left: no line
      const g = await store.insertGroup(newGroup());
      expect(await store.deleteGroup(g.scimId)).toBe(true);
      expect(journalEntries(dir)).toEqual([
        { seq: 1, op: 'putUser', user: u },
        { seq: 2, op: 'putUser', user: v2 },
        { seq: 3, op: 'addMembership', group: 'g-1', user: u.scimId },
        { seq: 4, op: 'removeMembership', group: 'g-1', user: u.scimId },
        { seq: 5, op: 'deleteUser', scimId: u.scimId },
        { seq: 6, op: 'putGroup', group: g },
        { seq: 7, op: 'deleteGroup', scimId: g.scimId },
      ]);
    } finally {
      await store.close();
    }
  });

  it('rebuilds the same state, indexes included, after close and reopen', async () => {
    const dir = freshDir();
    const store = await open(dir);
    const { a, b, g } = await populate(store);
    const before = store.dump();
    await store.close();
    const reopened = await open(dir);
    try {
      expect(reopened.dump()).toEqual(before);
      expect(await reopened.findUserByUserName(a.userName.toUpperCase())).toEqual(
        await reopened.getUser(a.scimId),
      );
      expect((await reopened.getUsersByUpstreamIds(['up-b'])).get('up-b')?.scimId).toBe(b.scimId);
      expect(await reopened.findGroupByDisplayName('renamed')).toMatchObject({
        scimId: g.scimId,
        version: 2,
      });
      expect(await reopened.findUsersByExternalId('ext-a')).toHaveLength(1);
      expect(await reopened.groupsOfUser(b.scimId)).toEqual([g.scimId]);
      expect(await reopened.countUsers({ detached: true })).toBe(0);
      // Writes go on from the next seq.
      await reopened.insertUser(newUser());
      expect(journalEntries(dir).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      await reopened.close();
    }
  });

  it('writes an entry to the file at once (a process crash keeps it), acknowledging it after the sync', async () => {
    const dir = freshDir();
    const store = await open(dir);
    try {
      const journal = journalOf(store);
      const real = journal.datasync.bind(journal);
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      journal.datasync = async (fd) => {
        await gate;
        return real(fd);
      };
      let acknowledged = false;
      const user = newUser();
      const write = store.insertUser(user).then(() => {
        acknowledged = true;
      });
      // Synchronously after the call: in the file (the kernel's page cache), not yet acknowledged.
      expect(journalEntries(dir).map((e) => (e.user as { scimId: string }).scimId)).toEqual([user.scimId]);
      await sleep(20);
      expect(acknowledged).toBe(false);
      release();
      await write;
      expect(acknowledged).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('a write that changes nothing is not acknowledged before the writes it observed', async () => {
    const store = await open(freshDir());
    try {
      const u = await store.insertUser(newUser());
      // Hold the next flush until released.
      const journal = journalOf(store);
      const real = journal.datasync.bind(journal);
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      journal.datasync = async (fd) => {
        await gate;
        return real(fd);
      };
      const answered: string[] = [];
      const note = (name: string) => () => {
        answered.push(name);
      };
      const writes = [
        store.addMembership('g-1', u.scimId).then(note('add')),
        store.addMembership('g-1', u.scimId).then(note('add again')),
        store.deleteUser('nobody').then(note('delete nothing')),
        store.updateUser(u.scimId, {}, 99).then(note('stale update')),
        store.updateGroup('missing', {}).then(note('update missing')),
      ];
      await sleep(30);
      expect(answered).toEqual([]);
      release();
      await Promise.all(writes);
      expect(answered.sort()).toEqual([
        'add',
        'add again',
        'delete nothing',
        'stale update',
        'update missing',
      ]);
    } finally {
      await store.close();
    }
  });

  it('groups concurrent writes into far fewer flushes (one write + one fdatasync each)', async () => {
    const store = await open(freshDir());
    try {
      await Promise.all(Array.from({ length: 500 }, () => store.insertUser(newUser())));
      const concurrent = store.stats();
      expect(concurrent.journalEntries).toBe(500);
      expect(concurrent.journalFlushes).toBeLessThan(50);
      for (let i = 0; i < 10; i++) await store.insertUser(newUser());
      expect(store.stats().journalFlushes).toBe(concurrent.journalFlushes + 10);
    } finally {
      await store.close();
    }
  });

  it('close waits for the writes in flight', async () => {
    const dir = freshDir();
    const store = await open(dir);
    const writes = Array.from({ length: 50 }, () => store.insertUser(newUser()));
    await store.close();
    await Promise.all(writes);
    const reopened = await open(dir);
    try {
      expect(await reopened.countUsers({})).toBe(50);
    } finally {
      await reopened.close();
    }
  });
});

describe('crash recovery', () => {
  it('keeps every acknowledged write when the files are copied mid-flush (a crash)', async () => {
    const dir = freshDir();
    const crashed = freshDir();
    const store = await open(dir);
    const ids: string[] = [];
    const acked = new Set<string>();
    let ackedAtCrash: string[] | undefined;
    const writes = [];
    for (let i = 0; i < 400; i++) {
      const user = newUser();
      ids.push(user.scimId);
      writes.push(
        store.insertUser(user).then(() => {
          acked.add(user.scimId);
          if (acked.size === 150) {
            // Synchronous: the copy is what a crash right now would leave, flushes in flight and all.
            cpSync(dir, crashed, { recursive: true });
            ackedAtCrash = [...acked];
          }
        }),
      );
    }
    await Promise.all(writes);
    await store.close();

    const recovered = await open(crashed);
    try {
      const present = (await recovered.listUsers({}, 0, 1000)).map((u) => u.scimId);
      for (const id of ackedAtCrash!) expect(present).toContain(id);
      // The journal is a prefix of the writes, in order: nothing after a lost write survives.
      expect(present).toEqual(ids.slice(0, present.length));
    } finally {
      await recovered.close();
    }
  });

  it.each([
    ['a torn last line', '{"seq":99,"op":"putUser","user":{"scimId":"u-torn","userN'],
    ['a complete last line without its newline', '{"seq":8,"op":"deleteUser","scimId":"x"}'],
    ['a last line of zeros (a crash after the size was updated)', '\0\0\0\0\0\0\n'],
  ])('drops %s with a warning and truncates it', async (_name, tail) => {
    const dir = freshDir();
    const store = await open(dir);
    await populate(store);
    const before = store.dump();
    await store.close();
    const file = join(dir, 'journal.jsonl');
    const size = (await stat(file)).size;
    await appendFile(file, tail);

    const { logger, lines } = capture();
    const reopened = await open(dir, { logger });
    try {
      expect(reopened.dump()).toEqual(before);
      expect((await stat(file)).size).toBe(size);
      const warning = lines.find((l) => String(l.msg).includes('dropped an incomplete last journal line'));
      expect(warning).toMatchObject({ level: 40, file, line: 8 });
      await reopened.insertUser(newUser());
    } finally {
      await reopened.close();
    }
    const again = await open(dir);
    try {
      expect(again.stats().users).toBe(3);
    } finally {
      await again.close();
    }
  });

  it.each([
    [
      'an unparsable line',
      (lines: string[]) => lines.splice(1, 1, '{"seq":2,"op":"putUs'),
      /line 2 is corrupt/,
    ],
    [
      'a missing entry',
      (lines: string[]) => lines.splice(1, 1),
      /line 2: seq 3 follows 1, entries are missing/,
    ],
    [
      'a line with an unknown op, even last',
      (lines: string[]) => lines.push('{"seq":8,"op":"dropTable"}'),
      /line 8 is corrupt \(unknown op "dropTable"\)/,
    ],
    ['seq going backwards', (lines: string[]) => lines.push(lines[0]), /line 8 is corrupt \(seq 1 after 7\)/],
  ])('refuses to start on %s, naming the file and line', async (_name, damage, message) => {
    const dir = freshDir();
    const store = await open(dir);
    await populate(store);
    await store.close();
    const file = join(dir, 'journal.jsonl');
    const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
    damage(lines);
    await writeFile(file, `${lines.join('\n')}\n`);
    const error = await open(dir).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(message);
    expect(error?.message).toContain(file);
    expect(error?.message).toMatch(/refusing to start/);
    // Nothing was changed, and the lock was released.
    expect((await readFile(file, 'utf8')).split('\n').filter((l) => l !== '')).toEqual(lines);
    expect(existsSync(join(dir, 'volc-scim-bridge.lock'))).toBe(false);
  });
});

describe('compaction', () => {
  it('compacts past the threshold while writes go on; reopening gives the same state', async () => {
    const dir = freshDir();
    const { logger, lines } = capture();
    const store = await open(dir, { compactAfterBytes: 8 * 1024, logger });
    const users = [];
    for (let i = 0; i < 20; i++) users.push(await store.insertUser(newUser()));
    const groups: GroupRecord[] = [];
    for (let i = 0; i < 5; i++) groups.push(await store.insertGroup(newGroup()));
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        users.map(async (u, i) => {
          await store.updateUser(u.scimId, { attributes: { round, title: 'x'.repeat(100) } });
          const g = groups[(i + round) % groups.length].scimId;
          if (round % 2) await store.removeMembership(g, u.scimId);
          else await store.addMembership(g, u.scimId);
          if (round === 20 && i % 5 === 0) await store.deleteUser(u.scimId);
        }),
      );
    }
    const stats = store.stats();
    expect(stats.compactions).toBeGreaterThan(2);
    expect(lines.filter((l) => l.msg === 'embedded store compacted').length).toBe(stats.compactions);
    const before = store.dump();
    await store.close();

    const snapshot = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
    const entries = journalEntries(dir);
    expect(snapshot.seq).toBeGreaterThan(0);
    if (entries.length > 0) expect(entries[0].seq).toBe(snapshot.seq + 1);
    expect((await stat(join(dir, 'journal.jsonl'))).size).toBeLessThan(64 * 1024);

    const reopened = await open(dir);
    try {
      expect(reopened.dump()).toEqual(before);
      expect(before.users).toHaveLength(16);
    } finally {
      await reopened.close();
    }
  });

  it('keeps every write made while a compaction runs, including during the journal swap', async () => {
    const dir = freshDir();
    const store = await open(dir);
    for (let i = 0; i < 200; i++) await store.insertUser(newUser({ attributes: { pad: 'x'.repeat(500) } }));
    const compaction = store.compact();
    let done = false;
    void compaction.then(() => {
      done = true;
    });
    const writes: Array<Promise<unknown>> = [];
    while (!done) {
      writes.push(store.insertUser(newUser()));
      await new Promise((r) => setImmediate(r));
    }
    await compaction;
    await Promise.all(writes);
    expect(writes.length).toBeGreaterThan(1);
    expect(store.stats()).toMatchObject({ compactions: 1, users: 200 + writes.length });
    const before = store.dump();
    await store.close();
    const entries = journalEntries(dir);
    const snapshot = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
    expect(entries.length).toBeGreaterThan(0);
    expect(entries[0].seq).toBe(snapshot.seq + 1);
    const reopened = await open(dir);
    try {
      expect(reopened.dump()).toEqual(before);
    } finally {
      await reopened.close();
    }
  });

  it('loads a snapshot next to the journal it replaced (a crash between snapshot and journal rewrite)', async () => {
    const dir = freshDir();
    const store = await open(dir);
    await populate(store);
    const oldJournal = await readFile(join(dir, 'journal.jsonl'), 'utf8');
    await store.compact();
    const atSnapshot = store.dump();
    expect(await readFile(join(dir, 'journal.jsonl'), 'utf8')).toBe('');
    const u = await store.insertUser(newUser());
    await store.updateUser(u.scimId, { active: false });
    await store.addMembership('g-x', u.scimId);
    const newEntries = await readFile(join(dir, 'journal.jsonl'), 'utf8');
    const final = store.dump();
    await store.close();
    const snapshot = await readFile(join(dir, 'snapshot.json'));

    // The new snapshot is in place, the journal still the old one, with the new writes appended.
    const crashed = freshDir();
    cpSync(dir, crashed, { recursive: true });
    await writeFile(join(crashed, 'journal.jsonl'), oldJournal + newEntries);
    // And the temp files a crash mid-write leaves behind.
    await writeFile(join(crashed, 'snapshot.json.tmp'), '{"format":"volc-scim');
    await writeFile(join(crashed, 'journal.jsonl.tmp'), '{"seq":1');
    const reopened = await open(crashed);
    try {
      expect(reopened.dump()).toEqual(final);
      expect(existsSync(join(crashed, 'snapshot.json.tmp'))).toBe(false);
      expect(existsSync(join(crashed, 'journal.jsonl.tmp'))).toBe(false);
    } finally {
      await reopened.close();
    }

    // A snapshot newer than anything the journal holds: the journal's entries are all older.
    const behind = freshDir();
    cpSync(dir, behind, { recursive: true });
    await writeFile(join(behind, 'snapshot.json'), snapshot);
    await writeFile(join(behind, 'journal.jsonl'), oldJournal.split('\n').slice(0, 3).join('\n') + '\n');
    const fromSnapshot = await open(behind);
    try {
      expect(fromSnapshot.dump()).toEqual(atSnapshot);
      await fromSnapshot.insertUser(newUser());
      expect(journalEntries(behind).map((e) => e.seq)).toEqual([1, 2, 3, atSnapshot.seq + 1]);
    } finally {
      await fromSnapshot.close();
    }
    const again = await open(behind);
    try {
      expect(again.stats().users).toBe(atSnapshot.users.length + 1);
    } finally {
      await again.close();
    }
  });

  it('refuses a corrupt snapshot', async () => {
    const dir = freshDir();
    const store = await open(dir);
    await populate(store);
    await store.compact();
    await store.close();
    const file = join(dir, 'snapshot.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.slice(0, text.length - 20));
    await expect(open(dir)).rejects.toThrow(/snapshot\.json is corrupt .*refusing to start/);
  });
});

describe('failures', () => {
  it('a failed fdatasync rejects the write, never acknowledges it, and makes the store unavailable', async () => {
    const dir = freshDir();
    const { logger, lines } = capture();
    const store = await open(dir, { logger });
    const kept = await store.insertUser(newUser());
    journalOf(store).datasync = () =>
      Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));

    const lost = newUser();
    const error = await store.insertUser(lost).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreBrokenError);
    expect(error).toMatchObject({ code: 'EIO' });
    expect((error as Error).message).toMatch(/journal\.jsonl failed .*EIO.*refuses every operation/);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreBrokenError);
    await expect(store.getUser(kept.scimId)).rejects.toBeInstanceOf(StoreBrokenError);
    await expect(store.insertUser(newUser())).rejects.toBeInstanceOf(StoreBrokenError);
    await expect(store.addMembership('g', 'u')).rejects.toBeInstanceOf(StoreBrokenError);
    expect(lines.some((l) => l.level === 50 && String(l.msg).includes('journal write failed'))).toBe(true);
    await store.close();

    const reopened = await open(dir);
    try {
      expect(await reopened.getUser(kept.scimId)).toEqual(kept);
      expect(await reopened.getUser(lost.scimId)).toBeNull();
    } finally {
      await reopened.close();
    }
  });

  it('writes queued behind a failed flush are rejected too, and none of them is on disk', async () => {
    const dir = freshDir();
    const store = await open(dir);
    const kept = await store.insertUser(newUser());
    journalOf(store).datasync = async () => {
      await sleep(20);
      throw new Error('disk gone');
    };
    const inFlight = Array.from({ length: 10 }, () => store.insertUser(newUser()));
    await sleep(5);
    const queued = Array.from({ length: 10 }, () => store.insertUser(newUser()));
    const results = await Promise.allSettled([...inFlight, ...queued]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    await store.close();
    const reopened = await open(dir);
    try {
      expect(reopened.dump().users).toEqual([kept]);
    } finally {
      await reopened.close();
    }
  });

  it('a write on a journal file closed underneath makes the store unavailable', async () => {
    const store = await open(freshDir());
    await store.insertUser(newUser());
    closeSync(journalOf(store).fd);
    await expect(store.insertUser(newUser())).rejects.toBeInstanceOf(StoreBrokenError);
    await expect(store.ping()).rejects.toThrow(/unavailable/);
    await store.close();
  });

  it('ping fails once DATA_DIR was removed underneath (writes would be lost on restart)', async () => {
    const dir = freshDir();
    const store = await open(dir);
    await store.insertUser(newUser());
    await rm(dir, { recursive: true, force: true });
    await expect(store.ping()).rejects.toThrow(/was deleted/);
    await expect(store.insertUser(newUser())).rejects.toBeInstanceOf(StoreBrokenError);
    await store.close();
  });
});
