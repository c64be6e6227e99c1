import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, startEmulator } from '../../src/emulator/index.js';
import { call, prepare } from './helpers.js';

/** Resolves once `condition` holds, checking between turns of the real event loop (socket I/O). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

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

  it('close() ends keep-alive connections promptly, idle or with a request under way, and is idempotent', async () => {
    // The emulator's waits become timers only the test could run; sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const emu = await startEmulator({
      faults: [{ action: 'GetUser', probability: 1, fault: 'latency', latencyMs: 60_000 }],
    });
    const url = new URL(emu.url);
    const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

    // An idle keep-alive connection: one answered request, the socket back in the agent's pool.
    const agent = new Agent({ keepAlive: true });
    const req = prepare(emu.url, 'ListUsers');
    const idle = await new Promise<Socket>((resolve, reject) => {
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
          const socket = res.socket;
          res.resume();
          res.on('end', () => resolve(socket));
        },
      )
        .on('error', reject)
        .end(req.body);
    });
    const idleClosed = closed(idle);

    // A connection whose request is still being answered (held by a latency fault on a timer that
    // never fires): busy, not idle; left alone it would hold close() open for good.
    const answer = call(emu.url, 'GetUser', { UserId: 'held' }).catch((e: Error) => e);
    await until(() => emu.calls().GetUser === 1);

    // Promptly: close() waits for neither connection to end on its own; the server ends both.
    await Promise.all([emu.close(), emu.close()]);
    await idleClosed;
    expect(await answer).toBeInstanceOf(Error); // its connection was closed, unanswered
    agent.destroy();
  });
});
