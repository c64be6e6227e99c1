import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FaultInjector } from '../../src/emulator/faults.js';
import { type FaultRule, type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { call, controlGet, DEV_CREDENTIALS, fails, ok, withEmulator } from './helpers.js';

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator());
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const always = (fault: FaultRule['fault'], extra: Partial<FaultRule> = {}): FaultRule => ({
  action: '*',
  probability: 1,
  fault,
  ...extra,
});
const userCount = async () => (await ok(api('ListUsers'))).Total as number;

/** Resolves once `condition` holds, checking between turns of the real event loop (socket I/O). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

/** A request whose answer can be checked for without awaiting it. */
function tracked<T>(request: Promise<T>): { promise: Promise<T>; answered: () => boolean } {
  let answered = false;
  const promise = request.finally(() => {
    answered = true;
  });
  promise.catch(() => {}); // awaited by the test; a rejection meanwhile is not unhandled
  return { promise, answered: () => answered };
}

/**
 * With the emulator's timers faked: the answer to `request`, got while the clock stands still. Fails
 * at once if answering it needs a timer (a latency wait), which would never fire.
 */
async function answeredWithoutWaiting<T>(request: Promise<T>): Promise<T> {
  const r = tracked(request);
  await until(() => r.answered() || vi.getTimerCount() > 0);
  expect(vi.getTimerCount(), 'timers the request waits on').toBe(0);
  return r.promise;
}

describe('error faults', () => {
  it('FlowLimitExceeded → 429 with Retry-After: 1', async () => {
    emu.setFaults([always('FlowLimitExceeded')]);
    const r = await fails(api('ListUsers'), 429, 'FlowLimitExceeded');
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json.ResponseMetadata.Error.CodeN).toBe(100018);
    expect(r.json.ResponseMetadata.Action).toBe('ListUsers');
  });

  it('InternalError → 500', async () => {
    emu.setFaults([always('InternalError')]);
    const r = await fails(api('ListUsers'), 500, 'InternalError');
    expect(r.json.ResponseMetadata.Error.Message).toMatch(/^Unknown internal error: /);
  });

  it('ServiceUnavailableTemp → 503', async () => {
    emu.setFaults([always('ServiceUnavailableTemp')]);
    expect(
      (await fails(api('ListUsers'), 503, 'ServiceUnavailableTemp')).json.ResponseMetadata.Error.CodeN,
    ).toBe(100019);
  });

  it('ConcurrentException → 400, and the action is not applied', async () => {
    emu.setFaults([{ action: 'CreateUser', probability: 1, fault: 'ConcurrentException' }]);
    const r = await fails(api('CreateUser', { UserName: 'x' }), 400, 'ConcurrentException');
    expect(r.json.ResponseMetadata.Error.Message).toBe('Concurrent request exception');
    expect(await userCount()).toBe(0);
  });
});

describe('connection faults', () => {
  it('reset: the socket is destroyed before the action runs', async () => {
    emu.setFaults([{ action: 'CreateUser', probability: 1, fault: 'reset' }]);
    await expect(api('CreateUser', { UserName: 'never' })).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(await userCount()).toBe(0);
    expect(emu.calls().CreateUser).toBe(1);
  });

  it('commitThenReset: the action is applied, then the socket is destroyed without an answer', async () => {
    emu.setFaults([{ action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 }]);
    await expect(api('CreateUser', { UserName: 'committed' })).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(await userCount()).toBe(1);
    // The client's retry now meets the committed first attempt.
    await fails(api('CreateUser', { UserName: 'committed' }), 404, 'UserNameAlreadyExists');
  });

  it('commitThenReset still resets when the action itself fails', async () => {
    emu.setFaults([{ action: 'GetUser', probability: 1, fault: 'commitThenReset' }]);
    await expect(api('GetUser', { UserId: 'nope' })).rejects.toThrow(/socket hang up|ECONNRESET/);
  });
});

describe('latency', () => {
  it('a latency rule delays the answer and then proceeds', async () => {
    emu.setFaults([always('latency', { latencyMs: 150 })]);
    const t0 = performance.now();
    await ok(api('ListUsers'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('latency rules add up and combine with a later error rule', async () => {
    emu.setFaults([
      always('latency', { latencyMs: 60 }),
      always('latency', { latencyMs: 60 }),
      always('InternalError'),
    ]);
    const t0 = performance.now();
    await fails(api('ListUsers'), 500, 'InternalError');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
  });

  it('the global latencyMs option delays actions but not the control API', async () => {
    const slow = await withEmulator({ latencyMs: 400 });
    // The emulator's waits become timers only the test runs (Date moves with them); sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const listed = tracked(ok(slow.api('ListUsers')));
      await until(() => listed.answered() || vi.getTimerCount() > 0);
      expect(listed.answered(), 'answered before any wait').toBe(false);
      // The one wait before the answer is the 400 ms latency.
      const t0 = Date.now();
      await vi.advanceTimersToNextTimerAsync();
      expect(Date.now() - t0).toBe(400);
      await answeredWithoutWaiting(listed.promise);
      // The control API is answered with no wait at all.
      expect((await answeredWithoutWaiting(controlGet(slow.emu.url, 'state?summary=1'))).userCount).toBe(0);
      // Not before authentication either: a bad signature is refused with no wait.
      await fails(
        answeredWithoutWaiting(
          slow.api('ListUsers', {}, { credentials: { ...DEV_CREDENTIALS, secretKey: 'bad' } }),
        ),
        401,
        'SignatureDoesNotMatch',
      );
    } finally {
      vi.useRealTimers();
      await slow.emu.close();
    }
  });
});

describe('rule selection', () => {
  it('probability 0 never fires', async () => {
    emu.setFaults([always('InternalError', { probability: 0 })]);
    for (let i = 0; i < 20; i++) await ok(api('ListUsers'));
  });

  it('probability 0.5 fires about half the time', async () => {
    emu.setFaults([always('ServiceUnavailableTemp', { probability: 0.5 })]);
    let fired = 0;
    for (let i = 0; i < 200; i++) if ((await api('ListUsers')).status === 503) fired++;
    // P(outside 50..150) for Binomial(200, 0.5) is far below 1e-12.
    expect(fired).toBeGreaterThan(50);
    expect(fired).toBeLessThan(150);
  });

  it('times caps the number of firings, then the rule is spent', async () => {
    emu.setFaults([always('FlowLimitExceeded', { times: 2 })]);
    await fails(api('ListUsers'), 429, 'FlowLimitExceeded');
    await fails(api('ListUsers'), 429, 'FlowLimitExceeded');
    await ok(api('ListUsers'));
    const rules = await controlGet(emu.url, 'faults');
    expect(rules).toEqual([{ action: '*', probability: 1, fault: 'FlowLimitExceeded', times: 0 }]);
  });

  it('times counts firings, not matches (a miss does not use it up)', () => {
    const draws = [0.9, 0.1, 0.9, 0.1, 0.1];
    const inj = new FaultInjector(() => draws.shift() ?? 0);
    inj.set([{ action: '*', probability: 0.5, fault: 'InternalError', times: 2 }]);
    const outcomes = Array.from({ length: 5 }, () => inj.decide('GetUser').outcome);
    expect(outcomes.map((o) => (typeof o === 'string' ? o : o.code))).toEqual([
      'proceed',
      'InternalError',
      'proceed',
      'InternalError',
      'proceed',
    ]);
  });

  it('AccessDenied refuses an action for one access key only, as IAM does (403, code 100013)', async () => {
    emu.setFaults([
      { action: 'GetGroup', probability: 1, fault: 'AccessDenied', accessKey: DEV_CREDENTIALS.accessKeyId },
    ]);
    const res = await fails(api('GetGroup', { GroupId: 'g-1' }), 403, 'AccessDenied');
    expect(res.json.ResponseMetadata.Error.CodeN).toBe(100013);
    expect(res.json.ResponseMetadata.Error.Message).toBe(
      'User is not authorized to perform: cloudidentity:GetGroup on resource: trn:cloudidentity:::*.',
    );
    await ok(api('ListUsers'));
    emu.setFaults([{ action: 'GetGroup', probability: 1, fault: 'AccessDenied', accessKey: 'AKLTother' }]);
    await fails(api('GetGroup', { GroupId: 'g-1' }), 404, 'UserGroupNotFound');
    expect(() =>
      emu.setFaults([{ action: '*', probability: 1, fault: 'AccessDenied', accessKey: '' }]),
    ).toThrow();
  });

  it('rules match their action only; the first firing non-latency rule wins', async () => {
    emu.setFaults([
      { action: 'CreateUser', probability: 1, fault: 'ConcurrentException' },
      always('InternalError', { times: 1 }),
      always('ServiceUnavailableTemp'),
    ]);
    await fails(api('CreateUser', { UserName: 'a' }), 400, 'ConcurrentException');
    await fails(api('ListUsers'), 500, 'InternalError');
    await fails(api('ListUsers'), 503, 'ServiceUnavailableTemp');
  });

  it('faults apply only after authentication succeeds', async () => {
    emu.setFaults([always('InternalError')]);
    await fails(
      api('ListUsers', {}, { credentials: { ...DEV_CREDENTIALS, secretKey: 'bad' } }),
      401,
      'SignatureDoesNotMatch',
    );
    await fails(api('NoSuchAction'), 404, 'InvalidActionOrVersion');
    expect(emu.calls()).toEqual({});
  });

  it('faulted requests are counted as calls', async () => {
    emu.setFaults([{ action: 'GetUser', probability: 1, fault: 'InternalError' }]);
    await api('GetUser', { UserId: 'x' });
    await api('GetUser', { UserId: 'x' });
    await api('ListUsers');
    expect(emu.calls()).toEqual({ GetUser: 2, ListUsers: 1 });
  });

  it('setFaults validates its rules', () => {
    expect(() => emu.setFaults([{ action: 'Nope', probability: 1, fault: 'reset' }])).toThrow(/action/);
    expect(() => emu.setFaults([{ action: '*', probability: 1.5, fault: 'reset' }])).toThrow(/probability/);
    expect(() => emu.setFaults([{ action: '*', probability: 1, fault: 'latency' }])).toThrow(/latencyMs/);
    expect(() => emu.setFaults([{ action: '*', probability: 1, fault: 'boom' as never }])).toThrow(/fault/);
  });

  it('the faults option is active from the start and cleared by reset()', async () => {
    const e = await startEmulator({ faults: [always('InternalError')] });
    try {
      expect((await call(e.url, 'ListUsers')).status).toBe(500);
      e.reset();
      expect((await call(e.url, 'ListUsers')).status).toBe(200);
    } finally {
      await e.close();
    }
  });
});
