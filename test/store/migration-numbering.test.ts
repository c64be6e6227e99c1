// One migration numbering for both stores: version N is the same schema change, under the same
// name, on SQLite and PostgreSQL. Stores written with an earlier schema, on SQLite also under its
// own former numbering (1: users to store_meta, 2: intents, 3: audit), open and reach the schema
// of a new store with their rows kept.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../../src/store/driver.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION } from '../../src/store/sqlite-migrations.js';
import { prepareDatabase } from '../../src/store/sqlite-store.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const sqlOf = (version: number) => SQLITE_MIGRATIONS.find((m) => m.version === version)!.sql;

describe('one numbering', () => {
  it('each version has the same name on both stores', () => {
    const list = (ms: ReadonlyArray<{ version: number; name: string }>) =>
      ms.map(({ version, name }) => ({ version, name }));
    expect(list(SQLITE_MIGRATIONS)).toEqual(list(MIGRATIONS));
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
  });
});

describe('embedded store written under an earlier numbering or schema', () => {
  /** The schema SQLite numbered 1, 2, 3 and 10 before sharing PostgreSQL's numbering. */
  const FORMER: Array<{ userVersion: number; sql: string }> = [
    { userVersion: 1, sql: sqlOf(1) + sqlOf(2) },
    { userVersion: 2, sql: sqlOf(3) },
    { userVersion: 3, sql: sqlOf(4) },
    { userVersion: 10, sql: sqlOf(10) },
  ];

  const schemaOf = (db: Database.Database) =>
    db
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
      .all();

  function fresh(): Database.Database {
    const db = new Database(':memory:');
    prepareDatabase(db);
    return db;
  }

  /** A store with some rows, as far as its schema has tables for them. */
  function fill(db: Database.Database): void {
    db.prepare(
      "INSERT INTO users (scim_id, user_name, user_name_lower, active, state) VALUES ('u1', 'Ann', 'ann', 1, 'ready')",
    ).run();
    const has = (t: string) => db.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').get(t) !== undefined;
    if (has('store_meta')) db.prepare("INSERT INTO store_meta (key, value) VALUES ('store_id', 's1')").run();
    if (has('intents'))
      db.prepare("INSERT INTO intents (id, resource, kind) VALUES ('i1', 'User/u1', 'user.create')").run();
    if (has('audit'))
      db.prepare(
        "INSERT INTO audit (at, actor, method, status, duration_ms) VALUES ('2026-01-01T00:00:00.000Z', 'okta', 'POST', 409, 1)",
      ).run();
  }

  for (const [i, level] of FORMER.entries()) {
    it(`user_version ${level.userVersion} (former numbering) opens and migrates to ${SQLITE_SCHEMA_VERSION}, rows kept`, () => {
      const db = new Database(':memory:');
      for (const step of FORMER.slice(0, i + 1)) db.exec(step.sql);
      db.pragma(`user_version = ${level.userVersion}`);
      fill(db);
      prepareDatabase(db);
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
      expect(schemaOf(db)).toEqual(schemaOf(fresh()));
      expect(db.prepare('SELECT user_name FROM users').all()).toEqual([{ user_name: 'Ann' }]);
      expect(db.prepare('SELECT n FROM row_counts WHERE name = ?').get('users')).toEqual({ n: 1 });
      expect(db.prepare('SELECT value FROM store_meta').all()).toEqual([{ value: 's1' }]);
      if (level.userVersion >= 2) expect(db.prepare('SELECT id FROM intents').all()).toEqual([{ id: 'i1' }]);
      if (level.userVersion >= 3)
        expect(db.prepare('SELECT actor, writes, errors FROM audit_actors').all()).toEqual([
          { actor: 'okta', writes: 1, errors: 1 },
        ]);
    });
  }

  it('a store left between two migrations of the shared numbering continues from where it stopped', () => {
    for (const stopped of [1, 2, 3, 4]) {
      const db = new Database(':memory:');
      for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= stopped)) db.exec(m.sql);
      db.pragma(`user_version = ${stopped}`);
      fill(db);
      prepareDatabase(db);
      expect(db.pragma('user_version', { simple: true }), String(stopped)).toBe(SQLITE_SCHEMA_VERSION);
      expect(schemaOf(db), String(stopped)).toEqual(schemaOf(fresh()));
    }
  });
});

describe('embedded store migrations', () => {
  it('run in one transaction: a failing one leaves the store as it was', () => {
    const db = new Database(':memory:');
    // Migration 3 creates intents; a table of that name already there makes it fail after 1 and 2.
    db.exec('CREATE TABLE intents (x TEXT)');
    expect(() => prepareDatabase(db)).toThrow(/intents already exists/);
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([
      { name: 'intents' },
    ]);
  });
});

const pg = await freshPostgresUrl('numbering');
describe.skipIf('skip' in pg)('PostgreSQL store written with an earlier schema', () => {
  if ('skip' in pg) {
    console.warn(`[skip] ${pg.skip}`);
    return;
  }
  const driver = openPostgresDriver({ connectionString: pg.url });
  afterAll(async () => {
    await driver.close();
    await pg.drop();
  });

  /** Tables, columns and indexes of the current schema (search_path), without its name. */
  const schemaOf = async (db: SqlDriver) => ({
    columns: await db.query(
      `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_schema = current_schema() ORDER BY table_name, column_name`,
    ),
    indexes: (
      await db.query<{ indexdef: string }>(
        'SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname',
      )
    ).map((r) => r.indexdef.replace(/ ON \S+\./, ' ON ')),
    migrations: await db.query('SELECT version, name FROM schema_migrations ORDER BY version'),
  });

  /** Runs fn in a schema of its own (search_path), so every level starts from nothing. */
  async function inSchema<T>(suffix: string, fn: (db: SqlDriver) => Promise<T>): Promise<T> {
    if ('skip' in pg) throw new Error('unreachable: suite is skipped');
    const name = `${pg.schema}_${suffix}`;
    await driver.query(`CREATE SCHEMA ${name}`);
    const url = new URL(pg.url);
    url.searchParams.set('options', `-c search_path=${name}`);
    const db = openPostgresDriver({ connectionString: url.toString() });
    try {
      return await fn(db);
    } finally {
      await db.close();
      await driver.query(`DROP SCHEMA ${name} CASCADE`);
    }
  }

  it('each earlier level migrates to the schema of a new store, rows kept', async () => {
    const expected = await inSchema('new', async (db) => {
      await migrate(db);
      return schemaOf(db);
    });
    const levels = MIGRATIONS.map((m) => m.version).filter((v) => v < 11);
    for (const level of levels) {
      await inSchema(`at_${level}`, async (db) => {
        await db.query(
          'CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        for (const m of MIGRATIONS.filter((x) => x.version <= level)) {
          for (const statement of m.statements) await db.query(statement);
          await db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
            m.version,
            m.name,
          ]);
        }
        await db.query(
          "INSERT INTO users (scim_id, user_name, user_name_lower, active, state) VALUES ('u1', 'Ann', 'ann', true, 'ready')",
        );
        const applied = await migrate(db);
        expect(applied, `level ${level}`).toEqual(MIGRATIONS.map((m) => m.version).filter((v) => v > level));
        expect(await schemaOf(db), `level ${level}`).toEqual(expected);
        expect(await db.query('SELECT user_name FROM users')).toEqual([{ user_name: 'Ann' }]);
      });
    }
  });
});
