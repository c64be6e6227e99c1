import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, startEmulator } from '../../src/emulator/index.js';
import { call, prepare } from './helpers.js';

describe('startEmulator options', () => {
  it.each([
    [{ port: -1 }, /port/],
    [{ port: 70000 }, /port/],
    [{ latencyMs: -5 }, /latencyMs/],
    [{ userQuota: 1.5 }, /userQuota/],
    [{ region: 'CN Beijing' }, /region/],
    [{ accessKeyId: '' }, /accessKeyId/],
    [{ maxSkewSeconds: -1 }, /maxSkewSeconds/],
  ])('rejects %j', async (opts, message) => {
    await expect(startEmulator(opts)).rejects.toThrow(message);
  });

  it('rejects invalid fault rules', async () => {
    await expect(
      startEmulator({ faults: [{ action: '*', probability: -1, fault: 'reset' }] }),
    ).rejects.toThrow(/probability/);
  });

  it('exports the documented dev credentials', () => {
    expect(DEV_ACCESS_KEY).toBe('AKLTemulatordevaccesskey');
    expect(DEV_SECRET_KEY).toBe('emulator-dev-secret-key');
  });

  it('listens on an ephemeral loopback port by default and reports its url', async () => {
    const emu = await startEmulator();
    try {
      expect(emu.port).toBeGreaterThan(0);
      expect(emu.url).toBe(`http://127.0.0.1:${emu.port}`);
    } finally {
      await emu.close();
    }
  });

  it('maxSkewSeconds narrows the timestamp window', async () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    const emu = await startEmulator({ maxSkewSeconds: 30, now: () => now });
    try {
      expect((await call(emu.url, 'ListUsers', {}, { at: now - 29_000 })).status).toBe(200);
      expect((await call(emu.url, 'ListUsers', {}, { at: now - 31_000 })).status).toBe(403);
    } finally {
      await emu.close();
    }
  });

  it('close() ends idle keep-alive connections promptly and is idempotent', async () => {
    const emu = await startEmulator();
    const agent = new Agent({ keepAlive: true });
    const req = prepare(emu.url, 'ListUsers');
    const url = new URL(emu.url);
    await new Promise<void>((resolve, reject) => {
      request(
        {
          host: url.hostname,
          port: url.port,
          path: req.path,
          method: req.method,
          headers: req.headers,
          agent,
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      )
        .on('error', reject)
        .end(req.body);
    });
    const t0 = performance.now();
    await Promise.all([emu.close(), emu.close()]);
    expect(performance.now() - t0).toBeLessThan(1000);
    agent.destroy();
  });
});
