// Micro-benchmark: what one audit record costs a SCIM write (`npx tsx bench/audit-write.ts`).
// Times store.appendAudit for a typical record on the embedded store (a DATA_DIR file: WAL,
// synchronous=FULL, so each append is a commit with its fsync) and, when reachable, PostgreSQL
// (one INSERT round trip on loopback). Prints per-append median and p95 in milliseconds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEntry } from '../src/store/audit-types.js';
import { openStore } from '../src/store/index.js';
import type { BridgeStore } from '../src/store/types.js';
import { freshPostgresUrl } from '../test/helpers/postgres.js';

const N = Number(process.env.AUDIT_BENCH_N ?? 2000);

function entry(i: number): AuditEntry {
  return {
    at: new Date().toISOString(),
    actor: 'okta',
    clientIp: '203.0.113.7',
    requestId: `req-${i}`,
    method: 'PATCH',
    resourceType: 'User',
    resourceId: `2819c223-7f76-453a-919d-${String(i).padStart(12, '0')}`,
    resourceName: `user${i}@example.com`,
    status: 200,
    scimType: null,
    detail: null,
    durationMs: 12.5,
    changes: {
      attributes: ['displayName', 'name'],
      fields: { DisplayName: { from: 'Old Name', to: 'New Name' } },
    },
    upstream: [
      { action: 'GetUser', requestId: '20260131091203A1B2C3D4E5F6', outcome: 'ok' },
      { action: 'UpdateUser', requestId: '20260131091203A1B2C3D4E5F7', outcome: 'ok' },
    ],
  };
}

async function measure(name: string, store: BridgeStore): Promise<void> {
  for (let i = 0; i < 200; i++) await store.appendAudit(entry(i)); // warm-up
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await store.appendAudit(entry(i));
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(3);
  console.log(`${name}: ${N} appends, median ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms`);
}

const dir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
const embedded = await openStore({ dataDir: dir });
await measure('embedded (SQLite file, synchronous=FULL)', embedded);
await embedded.close();
rmSync(dir, { recursive: true, force: true });

const pg = await freshPostgresUrl();
if ('skip' in pg) console.log(`postgres: skipped (${pg.skip})`);
else {
  const store = await openStore({ databaseUrl: pg.url });
  await measure('postgres (loopback)', store);
  await store.close();
  await pg.drop();
}
