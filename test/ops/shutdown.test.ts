import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, startEmulator } from '../../src/emulator/index.js';
import { silentLogger, testConfig } from './helpers.js';
import { type BridgeProcess, fastStoreEnv, httpRequest, spawnBridge } from './process.js';

const TOKEN = 'test-token-0123456789abcdef';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const tsx = (env: Record<string, string>) =>
  spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], env);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * An HTTP pass-through to `target` with a gate: while held, every request waits (unsent) until the
 * gate opens again. The upstream's answers then come exactly when the test says, not after a delay.
 */
async function upstreamGate(target: string) {
  let held: Array<() => void> | undefined;
  const server = createServer((req, res) => {
    const forward = () => {
      const upstream = request(
        new URL(req.url ?? '/', target),
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (held) held.push(forward);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold() {
      held ??= [];
    },
    open() {
      const waiting = held ?? [];
      held = undefined;
      for (const forward of waiting) forward();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('graceful shutdown of the real process', () => {
  let proc: BridgeProcess | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await proc?.cleanup();
    proc = undefined;
    await drop?.();
    drop = undefined;
  });
  /** The bridge on PostgreSQL when the test server is up, else on the embedded store. */
  const onFastStore = async (env: Record<string, string>) => {
    const store = await fastStoreEnv();
    drop = store.drop;
    return tsx({ ...store.env, ...env });
  };

  it('SIGTERM under in-flight load: readiness 503 first, every request answered, exit 0', async () => {
    // CloudIdentity behind a gate the test holds: the requests stay in flight until it says so.
    const upstream = await startEmulator({ port: 0 });
    const gate = await upstreamGate(upstream.url);
    onTestFinished(async () => {
      gate.open();
      await gate.close();
      await upstream.close();
    });
    proc = await onFastStore({
      VOLCENGINE_ENDPOINT: gate.url,
      VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
      VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
      // The window in which readiness must be seen to turn while the listener still accepts.
      SHUTDOWN_DELAY_MS: '3000',
      SHUTDOWN_GRACE_MS: '15000',
    });
    const { port } = proc;
    expect((await httpRequest(port, 'GET', '/readyz')).status).toBe(200);
    gate.hold();

    // Keep-alive connections, as a load balancer would hold them.
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const reads = Array.from({ length: 20 }, () =>
      httpRequest(port, 'GET', '/scim/v2/Users?count=5', { token: TOKEN, agent }),
    );
    const writes = Array.from({ length: 5 }, (_, i) =>
      httpRequest(port, 'POST', '/scim/v2/Users', {
        token: TOKEN,
        agent,
        body: { schemas: [USER], userName: `drain.${i}@example.com` },
      }),
    );
    // Wait until every request is being served (they are all waiting on the held upstream).
    await waitFor('25 requests in flight', async () => {
      const text = (await httpRequest(port, 'GET', '/metrics')).body;
      return Number(/^scim_bridge_http_requests_in_flight (\d+)$/m.exec(text)?.[1]) >= 26; // + this scrape
    });
    proc.child.kill('SIGTERM');
    // During SHUTDOWN_DELAY_MS the listener still accepts, but readiness already says no (once the
    // process has handled the signal).
    let ready: Awaited<ReturnType<typeof httpRequest>> | undefined;
    await waitFor('readiness 503', async () => {
      ready = await httpRequest(port, 'GET', '/readyz');
      return ready.status !== 200;
    });
    expect(ready?.status).toBe(503);
    expect(JSON.parse(ready!.body)).toMatchObject({ status: 'shutting_down' });
    expect((await httpRequest(port, 'GET', '/healthz')).status).toBe(200);
    // The drain has begun once the listener refuses new connections; only then does CloudIdentity answer.
    await waitFor('the listener closed', () =>
      httpRequest(port, 'GET', '/healthz').then(
        () => false,
        (e: Error) => /ECONNREFUSED/.test(e.message),
      ),
    );
    gate.open();

    const answers = await Promise.all([...reads, ...writes]);
    expect(answers.map((a) => a.status)).toEqual([...reads.map(() => 200), ...writes.map(() => 201)]);
    // Answered during the drain: the client is told not to reuse the connection.
    expect(answers.every((a) => a.headers.connection === 'close')).toBe(true);
    agent.destroy();

    const { code, signal } = await proc.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    const msgs = proc.lines.map((l) => l.msg);
    expect(msgs).toContain('shutting down: readiness is 503, finishing in-flight requests');
    expect(msgs.at(-1)).toBe('stopped');
    const shutdown = proc.lines.find((l) => String(l.msg).startsWith('shutting down'))!;
    expect(shutdown.inFlight).toBe(25);
    // No new connection is accepted once the listener is closed.
    await expect(httpRequest(port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
  }, 60_000);

  it('SIGINT exits 0 as well (embedded store closed cleanly; nothing in flight, so even grace 0 is clean)', async () => {
    proc = await tsx({ SHUTDOWN_GRACE_MS: '0' });
    expect((await httpRequest(proc.port, 'GET', '/healthz')).status).toBe(200);
    proc.child.kill('SIGINT');
    const { code } = await proc.exited;
    expect(code).toBe(0);
    expect(proc.lines.at(-1)?.msg).toBe('stopped');
  }, 60_000);

  it('in-flight requests are bounded by SHUTDOWN_GRACE_MS (then cut off, exit 1)', async () => {
    proc = await onFastStore({ EMULATOR_LATENCY_MS: '20000', SHUTDOWN_GRACE_MS: '500' });
    const { port } = proc;
    const stuck = httpRequest(port, 'GET', '/scim/v2/Users', { token: TOKEN }).catch((e: Error) => e);
    await waitFor('the request in flight', async () => {
      const text = (await httpRequest(port, 'GET', '/metrics')).body;
      return Number(/^scim_bridge_http_requests_in_flight (\d+)$/m.exec(text)?.[1]) >= 2; // + this scrape
    });
    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    // The process did not wait for the 20 s upstream: it cut the request off (exit 1, no answer).
    expect(code).toBe(1);
    expect(await stuck).toBeInstanceOf(Error);
    expect(proc.lines.map((l) => l.msg)).toContain(
      'shutdown grace period over: closing the remaining connections',
    );
  }, 60_000);
});

describe('server timeouts', () => {
  let bridge: RunningBridge | undefined;
  let drop: (() => Promise<void>) | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await bridge?.close().catch(() => {});
    bridge = undefined;
    await drop?.();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a slowloris client is cut off after HTTP_HEADERS_TIMEOUT_MS; keep-alive outlives LB idle timeouts', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'bridge-ops-'));
    const store = await fastStoreEnv();
    drop = store.drop;
    bridge = await startBridge(
      testConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        HTTP_HEADERS_TIMEOUT_MS: '500',
        REQUEST_DEADLINE_MS: '45000',
        ...store.env,
      }),
      silentLogger,
    );
    expect(bridge.server.headersTimeout).toBe(500);
    // Enforced twice a second, not every 30 s (Node's default); Node keeps the option on the server,
    // @types/node 20 does not declare it.
    expect(Reflect.get(bridge.server, 'connectionsCheckingInterval')).toBe(500);
    expect(bridge.server.requestTimeout).toBe(55_000);
    // Default 65 s: above the 60 s idle timeout of common load balancers (AWS ALB, nginx).
    expect(bridge.server.keepAliveTimeout).toBe(65_000);

    const port = Number(new URL(bridge.url).port);
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (d) => {
      received += d;
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
    // Cut off at all: the only other limit, requestTimeout (55 s), lies beyond this test's timeout.
    await closed;
    clearInterval(trickle);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    expect(received).toContain('Content-Type: application/scim+json');
    expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).toMatchObject({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '408',
    });

    // Headers over Node's 16 KiB limit: Node answers before the app, still with a SCIM error body.
    const big = await fetch(`${bridge.url}/scim/v2/Users`, { headers: { 'X-Big': 'x'.repeat(20_000) } });
    expect(big.status).toBe(431);
    expect(big.headers.get('content-type')).toBe('application/scim+json');
    expect(await big.json()).toMatchObject({ status: '431', detail: expect.stringContaining('16 KiB') });
  });
});
