import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'volc-scim-bridge.lock';

/**
 * Exclusive lock on DATA_DIR; returns its release. Nothing in the embedded store can detect a
 * second writer on the same files, so a second bridge refuses to start instead of corrupting them.
 * A lock left by a dead process (or by our own pid: a container restart reuses pids) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const owner = `${hostname()} ${process.pid}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(owner);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [host, pidText] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
      const pid = Number(pidText);
      const alive = host === hostname() && pid !== process.pid && pid > 0 && isAlive(pid);
      if (alive) {
        throw new Error(
          `DATA_DIR ${dataDir} is in use by process ${pid}; run one bridge per DATA_DIR, or set DATABASE_URL to share PostgreSQL between replicas`,
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock DATA_DIR ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
