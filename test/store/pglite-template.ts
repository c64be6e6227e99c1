// PGlite is only used by the legacy import now, and so only by its test: that test needs a PGlite
// DATA_DIR like an earlier version wrote. initdb in WASM takes seconds; the global setup dumps a
// fresh cluster once and the test loads the dump instead.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';

/** Env var naming the dump of a fresh PGlite cluster made by the test global setup. */
export const PGLITE_TEMPLATE_ENV = 'PGLITE_TEMPLATE_FILE';

/** Writes a dump of a fresh cluster to `file`. */
export async function writePGliteTemplate(file: string): Promise<void> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create();
  const dump = (await db.dumpDataDir('none')) as Blob;
  await db.close();
  await writeFile(file, Buffer.from(await dump.arrayBuffer()));
}

/**
 * Makes `dataDir` a fresh PGlite cluster, from the dump when there is one (else PGlite runs initdb
 * when the directory is first opened).
 */
export async function seedPGliteDataDir(dataDir: string): Promise<void> {
  const file = process.env[PGLITE_TEMPLATE_ENV];
  if (!file || !existsSync(file)) return;
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(dataDir, { loadDataDir: new Blob([readFileSync(file)]) });
  await db.close();
}
