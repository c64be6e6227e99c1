// Micro-benchmark: the statements one POST /Users runs on the embedded store, and what each costs
// (`npx tsx bench/store-statements.ts`; STORE_BENCH_POSTS (3000), STORE_BENCH_BATCH (8: units per group
// commit, as 16 clients give), STORE_BENCH_PRAGMAS="temp_store = DEFAULT;…" set after the store opens).
//
// A POST is two units of work (users-write.ts; their shapes in bench/floor/create-units.ts, which the
// durable floor commits too): the pending record with the record that the create started (status
// 102), committed before CreateUser; then the record made ready with the create's record, which
// replaces the start record. Run through SqliteStore on a file (WAL, synchronous=FULL),
// BATCH units per group commit. Per statement: calls per POST, wall and main-thread CPU (user+sys).
//
// Measured on the shared 2-CPU VM (load average 8–10, so walls are noisy; CPU is the figure to read),
// CPU µs per POST, 3,000 POSTs, batches of 8, four runs each, interleaved:
//   statement                                    temp_store=FILE (before)  MEMORY (now)
//   BEGIN IMMEDIATE (0.25/POST)                        2–3                     2
//   SAVEPOINT + RELEASE (2/POST each)                  4–5                     7–9
//   INSERT users … RETURNING                          28–33                   25–29
//   INSERT audit (2/POST)                             48–55                   26–29
//   UPDATE users … RETURNING                          21–24                   19–22
//   DELETE audit_subjects of the start record          5                       4–6
//   DELETE audit start record                         12–14                    9–10
//   COMMIT (0.25/POST: ~36 WAL frames and an fsync)   90–104                  87–91
//   all statements                                   211–243                 182–196
//   process CPU per POST (user + sys)            176–225 + 96–113        193–207 + 55–70
// With the journals in a file, every page a unit first touched inside its SAVEPOINT was written to a
// temporary file (~80 pwrites per POST under strace, against ~18 now: the WAL frames alone), and the
// COMMIT's fsync (ext4, data=ordered) flushed those writes too. Other figures from the same setup:
// COMMIT costs ~10 µs of CPU per WAL frame (pwrite of header and page, then the fsync's writeback),
// about half of it the fsync (synchronous=NORMAL, measured only: 171 against 348 µs a commit); a WAL
// checkpoint (wal_autocheckpoint=1000 pages: one every ~240 POSTs) costs 8–12 µs per POST amortised,
// so running it off the committing path would save little.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { prepareDatabase, SqliteStore } from '../src/store/sqlite-store.js';
import type { UserRecord } from '../src/store/types.js';
import type { CreateUserInput } from '../src/volcengine/types.js';
import { type CreateAttempt, pendingUnit, readyUnit } from './floor/create-units.js';

const POSTS = Number(process.env.STORE_BENCH_POSTS ?? 3000);
const BATCH = Number(process.env.STORE_BENCH_BATCH ?? 8);
const PRAGMAS = (process.env.STORE_BENCH_PRAGMAS ?? '').split(';').filter((p) => p.trim() !== '');

interface Cost {
  calls: number;
  wallNs: bigint;
  cpuUs: number;
}
const costs = new Map<string, Cost>();

/** Times every statement the store prepares (the store's private statement cache, wrapped). */
function instrument(): void {
  const proto = SqliteStore.prototype as unknown as { stmt(sql: string): Database.Statement };
  const original = proto.stmt;
  const wrapped = new WeakMap<Database.Statement, Database.Statement>();
  proto.stmt = function (this: unknown, sql: string) {
    const s = original.call(this, sql);
    let w = wrapped.get(s);
    if (!w) {
      const key = sql.replace(/\s+/g, ' ').slice(0, 60);
      const cost = costs.get(key) ?? { calls: 0, wallNs: 0n, cpuUs: 0 };
      costs.set(key, cost);
      const timed =
        <A extends unknown[], R>(fn: (...a: A) => R) =>
        (...a: A): R => {
          const cpu = process.cpuUsage();
          const t = process.hrtime.bigint();
          try {
            return fn.apply(s, a);
          } finally {
            cost.wallNs += process.hrtime.bigint() - t;
            const used = process.cpuUsage(cpu);
            cost.cpuUs += used.user + used.system;
            cost.calls++;
          }
        };
      w = { run: timed(s.run), all: timed(s.all), get: timed(s.get) } as unknown as Database.Statement;
      wrapped.set(s, w);
    }
    return w;
  };
}

const ATTRIBUTES = {
  displayName: 'Bench User',
  name: { formatted: 'Bench User', familyName: 'User', givenName: 'Bench' },
  emails: [{ primary: true, type: 'work', value: 'bench@bench.example' }],
  'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Benchmark' },
};

/** The i-th POST's create, as the bridge would record it for an Entra-shaped body. */
function attemptOf(i: number): { attempt: CreateAttempt; input: CreateUserInput } {
  const userName = `user-${i}@bench.example`;
  return {
    attempt: {
      scimId: randomUUID(),
      userName,
      externalId: randomUUID(),
      attributes: ATTRIBUTES,
      requestId: `req-${i}`,
      actor: 'entra',
      clientIp: '127.0.0.1',
      startedAt: Date.now(),
    },
    input: { UserName: userName, DisplayName: `Bench User ${i}`, Email: userName },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'store-statements-'));
  const db = new Database(join(dir, 'bridge.sqlite'));
  prepareDatabase(db);
  for (const p of PRAGMAS) db.pragma(p);
  const store = new SqliteStore(db);
  instrument();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < POSTS; i += BATCH) {
    const posts = Array.from({ length: Math.min(BATCH, POSTS - i) }, (_, k) => attemptOf(i + k));
    const pending = await Promise.all(posts.map(({ attempt }) => store.commit(pendingUnit(attempt))));
    await Promise.all(
      posts.map(({ attempt, input }, k) =>
        store.commit(
          readyUnit(
            attempt,
            (pending[k].users.get(attempt.scimId) as UserRecord).version,
            randomUUID(),
            input,
            [{ action: 'CreateUser', requestId: `REQ${i + k}`, outcome: 'ok' }],
          ),
        ),
      ),
    );
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  rmSync(dir, { recursive: true, force: true });

  console.log(
    `${POSTS} POSTs, ${BATCH} units per group commit${PRAGMAS.length ? `, ${PRAGMAS.join('; ')}` : ''}`,
  );
  console.log('per POST   wall µs   cpu µs  statement');
  let wall = 0;
  let cpuUs = 0;
  for (const [sql, c] of costs) {
    if (c.calls === 0) continue;
    const w = Number(c.wallNs) / 1000 / POSTS;
    wall += w;
    cpuUs += c.cpuUs / POSTS;
    console.log(
      `${(c.calls / POSTS).toFixed(2).padStart(8)} ${w.toFixed(1).padStart(9)} ${(c.cpuUs / POSTS).toFixed(1).padStart(8)}  ${sql}`,
    );
  }
  console.log(
    `all statements: ${wall.toFixed(0)} µs wall, ${cpuUs.toFixed(0)} µs CPU per POST; process: ${((wallMs * 1000) / POSTS).toFixed(0)} µs wall, user ${(cpu.user / POSTS).toFixed(0)} + sys ${(cpu.system / POSTS).toFixed(0)} µs CPU per POST`,
  );
}

await main();
