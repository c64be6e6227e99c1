// AUDIT_RETENTION_DAYS on a real store: what is pruned, in which steps, and what a failure does.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditRetention } from '../../src/audit/retention.js';
import { openTestStore, type StoreKind, storeKinds, type TestStore } from '../helpers/domain.js';
import { auditEntry } from '../store/contract.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  return { lines, logger };
}

describe.each(await storeKinds())('AuditRetention (%s store)', (kind: StoreKind) => {
  let t: TestStore | undefined;
  afterEach(async () => {
    await t?.close().catch(() => undefined);
    t = undefined;
  });

  async function storeWith(ats: string[], subjects?: string[]): Promise<TestStore> {
    t = await openTestStore(kind);
    for (const at of ats)
      await t.store.appendAudit({ ...auditEntry({ resourceId: `r-${at}` }), at, subjects });
    return t;
  }

  const remaining = async (s: TestStore) =>
    (await s.store.listAudit({ limit: 1000, order: 'asc' })).map((r) => r.at);

  it('deletes exactly the records older than the retention, in batches, and says how many', async () => {
    const kept = [ago(180 * DAY), ago(180 * DAY - 1), ago(DAY), ago(0)];
    const old = [ago(180 * DAY + 1), ago(200 * DAY), ago(365 * DAY), ago(400 * DAY), ago(1000 * DAY)];
    const s = await storeWith([...old, ...kept]);
    const { lines, logger } = capture();
    const retention = new AuditRetention({
      store: s.store,
      retentionDays: 180,
      logger,
      batch: 2,
      pauseMs: 0,
      now: () => NOW,
    });
    expect(await retention.pruneNow()).toBe(5);
    expect((await remaining(s)).sort()).toEqual([...kept].sort());
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'audit retention: old records pruned',
        deleted: 5,
        before: ago(180 * DAY),
      }),
    );
    // Nothing left to prune: nothing deleted, nothing logged.
    expect(await retention.pruneNow()).toBe(0);
    expect(lines.filter((l) => l.msg === 'audit retention: old records pruned')).toHaveLength(1);
  });

  it('a pruned record no longer shows in the history of the resources it named', async () => {
    const s = await storeWith([ago(400 * DAY)], ['u-pruned']);
    expect(await s.store.listAudit({ resource: 'u-pruned', limit: 10 })).toHaveLength(1);
    const retention = new AuditRetention({
      store: s.store,
      retentionDays: 30,
      logger: capture().logger,
      now: () => NOW,
    });
    expect(await retention.pruneNow()).toBe(1);
    expect(await s.store.listAudit({ resource: 'u-pruned', limit: 10 })).toEqual([]);
  });

  it('one pass at a time: a second pruneNow while one runs joins it', async () => {
    const s = await storeWith([ago(400 * DAY), ago(401 * DAY), ago(402 * DAY)]);
    const retention = new AuditRetention({
      store: s.store,
      retentionDays: 30,
      logger: capture().logger,
      batch: 1,
      pauseMs: 0,
      now: () => NOW,
    });
    const first = retention.pruneNow();
    const second = retention.pruneNow();
    expect(second).toBe(first);
    expect(await first).toBe(3);
  });

  it('stop ends a pass after the batch it is in, and waits for it', async () => {
    const s = await storeWith([
      ago(400 * DAY),
      ago(401 * DAY),
      ago(402 * DAY),
      ago(403 * DAY),
      ago(404 * DAY),
    ]);
    const retention = new AuditRetention({
      store: s.store,
      retentionDays: 30,
      logger: capture().logger,
      batch: 2,
      pauseMs: 0,
      now: () => NOW,
    });
    const pass = retention.pruneNow();
    await retention.stop();
    expect(await pass).toBe(2);
    // The oldest go first.
    expect((await remaining(s)).sort()).toEqual([ago(402 * DAY), ago(401 * DAY), ago(400 * DAY)].sort());
  });

  it('a store that fails is logged and retried later, never thrown', async () => {
    const s = await storeWith([ago(400 * DAY)]);
    await s.store.close();
    const { lines, logger } = capture();
    const retention = new AuditRetention({ store: s.store, retentionDays: 30, logger, now: () => NOW });
    expect(await retention.pruneNow()).toBe(0);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'audit retention: pruning failed; will retry at the next interval',
      }),
    );
  });
});
