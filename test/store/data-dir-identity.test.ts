// One bridge per database FILE, whatever path leads to it; and the modes of what DATA_DIR holds.
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { StoreSetupError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import { newUser } from './contract.js';

const root = mkdtempSync(join(tmpdir(), 'data-dir-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = join(root, `d${++n}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
};

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreSetupError);
  return err as Error;
}

describe('one bridge per database file', () => {
  it('refuses a second DATA_DIR whose bridge.sqlite is a symlink to a store in use, either way round', async () => {
    const a = newDir();
    const first = await openStore({ dataDir: a });
    await first.insertUser(newUser());
    const b = newDir();
    symlinkSync(join(a, 'bridge.sqlite'), join(b, 'bridge.sqlite'));
    const err = await refusal(openStore({ dataDir: b }));
    expect(err.message).toMatch(/in use by another bridge process/);
    await first.close();

    // The link's DATA_DIR first: the store's own DATA_DIR is then refused.
    const viaLink = await openStore({ dataDir: b, acceptEmptyStore: true });
    expect(await viaLink.countUsers({})).toBe(1);
    await refusal(openStore({ dataDir: a }));
    await viaLink.close();
  });

  it('refuses a bridge.sqlite with a second hard link, naming it', async () => {
    const a = newDir();
    const s = await openStore({ dataDir: a });
    await s.close();
    const b = newDir();
    linkSync(join(a, 'bridge.sqlite'), join(b, 'bridge.sqlite'));
    const err = await refusal(openStore({ dataDir: a }));
    expect(err.message).toMatch(/2 hard links.*One bridge per database file/s);
  });
});

describe('modes of the files in DATA_DIR', () => {
  it('a new DATA_DIR is 0700, and the store, the lock, the marker and the emulator state are 0600', async () => {
    const dataDir = join(newDir(), 'nested', 'data');
    const store = await openStore({ dataDir });
    await store.insertUser(newUser());
    const emulator = await startEmulator({ port: 0, stateFile: join(dataDir, 'emulator.sqlite') });
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      for (const f of readdirSync(dataDir)) expect(statSync(join(dataDir, f)).mode & 0o777, f).toBe(0o600);
      expect(readdirSync(dataDir)).toContain('emulator.sqlite');
    } finally {
      await emulator.close();
      await store.close();
    }
  });
});
