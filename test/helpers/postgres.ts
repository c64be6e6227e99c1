// Isolated PostgreSQL schemas for tests: every call gets its own schema on the test server, so
// parallel test files and reruns never see each other's tables.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The test server: TEST_DATABASE_URL, else a local trust-auth PostgreSQL. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

export type FreshPostgres = { url: string; schema: string; drop(): Promise<void> } | { skip: string };

/**
 * Creates schema `<prefix>_<random>` and returns a URL whose connections use it as search_path
 * (`options=-c search_path=…`), plus drop() to remove it (close pools on it first). When the server
 * cannot be reached, returns `{ skip }` with the reason instead; other failures throw.
 */
export async function freshPostgresUrl(prefix = 'test'): Promise<FreshPostgres> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`invalid schema prefix ${prefix}`);
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;

  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 });
  // pg emits 'error' when the server drops the connection; unhandled it would crash the worker.
  admin.on('error', () => {});
  try {
    await admin.connect();
  } catch (err) {
    await admin.end().catch(() => {});
    return { skip: `PostgreSQL not reachable at ${redact(TEST_DATABASE_URL)}: ${(err as Error).message}` };
  }
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await admin.end();
  }

  const url = new URL(TEST_DATABASE_URL);
  const options = url.searchParams.get('options');
  url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable TEST_DATABASE_URL)';
  }
}
