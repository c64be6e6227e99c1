// The embedded store: the shared contract in memory and in a DATA_DIR. In a DATA_DIR, every test
// ends by reopening the directory: the state rebuilt from the files must equal the one in memory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { type ContractTarget, newGroup, newUser, storeContract } from './contract.js';

interface MemoryTarget extends ContractTarget {
  store: MemoryStore;
  dataDir?: string;
}

function sameStorePeer(t: () => MemoryStore) {
  // One process owns the embedded store: concurrent callers share the instance.
  return async () => ({ store: t(), close: async () => {} });
}

storeContract<MemoryTarget>(
  'embedded store (in memory)',
  async () => {
    const target: MemoryTarget = {
      store: await MemoryStore.open(),
      reset: async () => {
        await target.store.close();
        target.store = await MemoryStore.open();
      },
      peer: sameStorePeer(() => target.store),
      close: () => target.store.close(),
    };
    return target;
  },
  {
    extra: () => {
      it('openStore({ inMemory: true }) opens an embedded store without files', async () => {
        const store = await openStore({ inMemory: true });
        try {
          expect(store).toBeInstanceOf(MemoryStore);
          const u = await store.insertUser(newUser());
          expect(await store.getUser(u.scimId)).toEqual(u);
          expect((store as MemoryStore).stats().journalFlushes).toBe(0);
        } finally {
          await store.close();
        }
      });

      it('rejects every call once closed', async () => {
        const store = await MemoryStore.open();
        await store.close();
        await store.close();
        await expect(store.ping()).rejects.toThrow(/closed/);
        await expect(store.getUser('x')).rejects.toThrow(/closed/);
        await expect(store.insertUser(newUser())).rejects.toThrow(/closed/);
      });
    },
  },
);

const root = await mkdtemp(join(tmpdir(), 'embedded-store-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let dirs = 0;

type DirTarget = MemoryTarget & { dataDir: string };

storeContract<DirTarget>(
  'embedded store (DATA_DIR)',
  async () => {
    const dataDir = join(root, `d${++dirs}`);
    const target: DirTarget = {
      dataDir,
      store: await MemoryStore.open({ dataDir }),
      reset: async () => {
        await target.store.close();
        target.dataDir = join(root, `d${++dirs}`);
        target.store = await MemoryStore.open({ dataDir: target.dataDir });
      },
      peer: sameStorePeer(() => target.store),
      close: () => target.store.close(),
    };
    return target;
  },
  {
    extra: (target) => {
      afterEach(async () => {
        const t = target();
        const before = t.store.dump();
        await t.store.close();
        t.store = await MemoryStore.open({ dataDir: t.dataDir });
        expect(t.store.dump()).toEqual(before);
      });

      it('keeps its data across close and reopen through openStore, and logs where it is', async () => {
        const t = target();
        const u = await t.store.insertUser(newUser({ tombstoneGroupIds: ['g-1'] }));
        const g = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, u.scimId);
        await t.store.close();

        const lines: string[] = [];
        const logger = pino(
          { level: 'info' },
          new Writable({
            write(chunk, _enc, done) {
              lines.push(String(chunk));
              done();
            },
          }),
        );
        const reopened = await openStore({ dataDir: t.dataDir, logger });
        t.store = reopened as MemoryStore;
        expect(await reopened.getUser(u.scimId)).toEqual(u);
        expect(await reopened.getGroup(g.scimId)).toEqual(g);
        expect(await reopened.groupsOfUser(u.scimId)).toEqual([g.scimId]);
        const ready = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'store ready');
        expect(ready).toMatchObject({ store: 'embedded', dataDir: t.dataDir });
        const loaded = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'embedded store loaded');
        expect(loaded).toMatchObject({ users: 1, groups: 1, memberships: 1, replayed: 3 });
      });
    },
  },
);
