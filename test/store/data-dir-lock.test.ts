import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCK_FILE } from '../../src/store/data-dir-lock.js';
import { openStore } from '../../src/store/index.js';

describe('embedded store DATA_DIR lock', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function tempDir(): Promise<string> {
    const dataDir = await mkdtemp(join(tmpdir(), 'data-dir-lock-'));
    dirs.push(dataDir);
    return dataDir;
  }

  it('refuses a second bridge on the same DATA_DIR, and frees it on close', async () => {
    const dataDir = await tempDir();
    const first = await openStore({ dataDir });
    expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(`${hostname()} ${process.pid}`);
    // Same process, so pretend the lock belongs to another live process (our parent).
    await writeFile(join(dataDir, LOCK_FILE), `${hostname()} ${process.ppid}`);
    await expect(openStore({ dataDir })).rejects.toThrow(/in use by process/);
    await first.close();
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    const again = await openStore({ dataDir });
    await again.close();
  });

  it('takes over a lock left by a dead process', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, LOCK_FILE), `${hostname()} 999999`);
    const store = await openStore({ dataDir });
    await store.ping();
    await store.close();
  });

  it('releases the lock when loading fails', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, 'snapshot.json'), '{"not":"a snapshot"}');
    await expect(openStore({ dataDir })).rejects.toThrow(/snapshot\.json is not a snapshot/);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  });
});
