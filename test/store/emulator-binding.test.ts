// A store bound to an in-process emulator names its instance: another emulator's data is refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { StoreBindingError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';

const root = mkdtempSync(join(tmpdir(), 'emulator-binding-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => join(root, `d${++n}`);

describe('the binding to an in-process emulator', () => {
  it('keeps the instance id of the state file across restarts; a new file is a new instance', async () => {
    const file = join(dir(), 'emulator.sqlite');
    const a = await startEmulator({ port: 0, stateFile: file });
    const id = a.instanceId;
    await a.close();
    const again = await startEmulator({ port: 0, stateFile: file });
    expect(again.instanceId).toBe(id);
    await again.close();
    const other = await startEmulator({ port: 0, stateFile: join(dir(), 'emulator.sqlite') });
    expect(other.instanceId).not.toBe(id);
    await other.close();
  });

  it('a binding without an instance (older stores) takes the first instance; another is refused unless rebound', async () => {
    const dataDir = dir();
    const legacy = await openStore({ dataDir, upstream: { kind: 'emulator' } });
    await legacy.close();
    const first = await openStore({ dataDir, upstream: { kind: 'emulator', instance: 'one' } });
    await first.close();
    const err = await openStore({ dataDir, upstream: { kind: 'emulator', instance: 'two' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreBindingError);
    expect((err as Error).message).toMatch(
      /instance one.*another in-process emulator \(instance two.*--rebind-store/s,
    );
    // --check-config knows no instance: any emulator matches.
    await (await openStore({ dataDir, upstream: { kind: 'emulator' } })).close();
    const rebound = await openStore({
      dataDir,
      upstream: { kind: 'emulator', instance: 'two' },
      rebind: true,
    });
    await rebound.close();
    await (await openStore({ dataDir, upstream: { kind: 'emulator', instance: 'two' } })).close();
  });
});
