import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';

describe('embedded store DATA_DIR lock', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('refuses a second bridge on the same DATA_DIR, and frees it on close', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pglite-lock-'));
    dirs.push(dataDir);
    const first = await openStore({ dataDir });
    // Same process, so pretend the lock belongs to another live process (our parent).
    await writeFile(
      join(dataDir, 'volc-scim-bridge.lock'),
      `${(await import('node:os')).hostname()} ${process.ppid}`,
    );
    await expect(openStore({ dataDir })).rejects.toThrow(/in use by process/);
    await first.close();
    const again = await openStore({ dataDir });
    await again.close();
  });

  it('takes over a lock left by a dead process', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pglite-lock-'));
    dirs.push(dataDir);
    await writeFile(join(dataDir, 'volc-scim-bridge.lock'), `${(await import('node:os')).hostname()} 999999`);
    const store = await openStore({ dataDir });
    await store.ping();
    await store.close();
  });
});
