// The PostgreSQL driver names the statements of units (SqlDriver.unit) and of lookups by key
// (queryPrepared): parsed once per connection, and parsed again after a unit in which PostgreSQL
// refused their Parse (a transaction already aborted by an earlier statement).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SqlDriver, UnitStatementError } from '../../src/store/driver.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const pgSchema = await freshPostgresUrl('named_statements');
if ('skip' in pgSchema)
  console.warn(`[test/store] skipping the PostgreSQL named statements: ${pgSchema.skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

describe.skipIf('skip' in pgSchema)('named statements on PostgreSQL', () => {
  let db: SqlDriver;
  beforeAll(async () => {
    if (!('url' in pgSchema)) return;
    db = openPostgresDriver({ connectionString: pgSchema.url });
    await db.query('CREATE TABLE t (id integer PRIMARY KEY)');
  });
  afterAll(async () => {
    await db?.close();
  });

  const insert = (id: number) => ({ sql: 'INSERT INTO t (id) VALUES ($1)', params: [id] });
  const select = (v: number) => ({ sql: 'SELECT $1::int AS v, count(*)::int AS n FROM t', params: [v] });

  it('prepares each statement text once per connection', async () => {
    await db.unit!([insert(1), insert(2)]);
    // Units run one at a time here, so the pool hands back the same (most recently used) connection.
    const [names] = (await db.unit!([
      { sql: 'SELECT statement FROM pg_prepared_statements ORDER BY statement' },
    ])) as Array<Array<{ statement: string }>>;
    expect(names.map((r) => r.statement)).toEqual([
      'INSERT INTO t (id) VALUES ($1)',
      'SELECT statement FROM pg_prepared_statements ORDER BY statement',
      // Every unit's own first statement: its transaction id (to ask its outcome by).
      'SELECT txid_current()::text AS id',
    ]);
  });

  it('runs a statement whose Parse an aborted transaction refused, in the next unit', async () => {
    // insert(1) fails (the key is taken): the transaction is aborted, and the Parse of the SELECT,
    // never sent on this connection before, is refused.
    const failed = await db.unit!([insert(1), select(7)]).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(UnitStatementError);
    expect((failed as UnitStatementError).index).toBe(0);
    expect(await db.unit!([select(8), insert(3)])).toEqual([[{ v: 8, n: 2 }], []]);
    expect(await db.unit!([select(9), select(10)])).toEqual([[{ v: 9, n: 3 }], [{ v: 10, n: 3 }]]);
  });

  it('keeps a lookup by key prepared, and runs other queries unnamed', async () => {
    const lookup = 'SELECT id FROM t WHERE id = $1';
    expect(await db.queryPrepared!(lookup, [1])).toEqual([{ id: 1 }]);
    expect(await db.queryPrepared!(lookup, [4])).toEqual([]);
    expect(await db.query('SELECT id FROM t WHERE id = $1 AND true', [2])).toEqual([{ id: 2 }]);
    // One at a time: the pool hands back the same connection.
    const prepared = await db.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
    expect(prepared.map((r) => r.statement)).toContain(lookup);
    expect(prepared.map((r) => r.statement)).not.toContain('SELECT id FROM t WHERE id = $1 AND true');
  });
});
