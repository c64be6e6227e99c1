import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEmulator, startEmulator } from '../../src/emulator/index.js';

const run = promisify(execFile);

// The README's hand-signed request (scripts/signed-request.mjs uses only node:crypto) is answered.
describe('scripts/signed-request.mjs against the emulator', () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('creates and finds a user with a request signed by hand', async () => {
    const env = { ...process.env, ENDPOINT: emulator.url };
    const created = await run(
      process.execPath,
      ['scripts/signed-request.mjs', 'CreateUser', '{"UserName":"hand.signed"}'],
      { env },
    );
    expect(created.stdout).toMatch(/^200 /);
    expect(created.stdout).toContain('"UserName": "hand.signed"');
    const listed = await run(
      process.execPath,
      ['scripts/signed-request.mjs', 'ListUsers', '{"UserName":"HAND.SIGNED"}'],
      { env },
    );
    expect(listed.stdout).toContain('"Total": 1');
    expect(emulator.calls()).toMatchObject({ CreateUser: 1, ListUsers: 1 });
  });

  it('is refused with a wrong secret key', async () => {
    const env = { ...process.env, ENDPOINT: emulator.url, VOLCENGINE_SECRET_KEY: 'not-the-secret' };
    const refused = await run(process.execPath, ['scripts/signed-request.mjs', 'ListUsers', '{}'], { env });
    expect(refused.stdout).toMatch(/^401 /);
    expect(refused.stdout).toContain('SignatureDoesNotMatch');
  });
});
