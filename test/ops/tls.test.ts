// The bridge serving HTTPS itself (TLS_CERT_FILE / TLS_KEY_FILE): a request succeeds with the
// certificate, and a reload (SIGHUP in the real process) makes new connections get the new one.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { silentLogger, testConfig } from './helpers.js';
import { type BridgeProcess, spawnBridge } from './process.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-tls-'));
const certFile = join(dir, 'tls.crt');
const keyFile = join(dir, 'tls.key');

/** A self-signed certificate for 127.0.0.1; `name` ends up in its subject CN. */
function makeCert(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
  console.warn('[skip] TLS tests not run: openssl is not installed');
}

let first: { cert: string; key: string };
let second: { cert: string; key: string };
beforeAll(() => {
  if (!haveOpenssl) return;
  first = makeCert('first-cert');
  second = makeCert('second-cert');
  install(first);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function install(pair: { cert: string; key: string }): void {
  copyFileSync(pair.cert, certFile);
  copyFileSync(pair.key, keyFile);
}

/** GET /healthz over a fresh TLS connection trusting both test certificates; the peer's CN. */
function healthz(port: number): Promise<{ status: number; cn: string }> {
  const ca = [readFileSync(first.cert), readFileSync(second.cert)];
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca, agent: false }, (res) => {
      const peer =
        res.socket && 'getPeerCertificate' in res.socket
          ? (res.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate()
          : undefined;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cn: String(peer?.subject?.CN ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!haveOpenssl)('TLS served by the bridge', () => {
  let bridge: RunningBridge | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    install(first);
  });

  const start = async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'bridge-tls-data-'));
    bridge = await startBridge(
      testConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        TLS_CERT_FILE: certFile,
        TLS_KEY_FILE: keyFile,
      }),
      silentLogger,
    );
    return bridge;
  };

  it('answers HTTPS with the configured certificate; reloadTls switches new connections to the new one', async () => {
    const b = await start();
    expect(b.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await healthz(b.port)).toEqual({ status: 200, cn: 'first-cert' });
    install(second);
    // Not re-read until asked: a half-copied pair must not be picked up by accident.
    expect((await healthz(b.port)).cn).toBe('first-cert');
    b.reloadTls();
    expect(await healthz(b.port)).toEqual({ status: 200, cn: 'second-cert' });
  });

  it('a reload with a key that does not match the certificate throws and keeps the old pair', async () => {
    const b = await start();
    copyFileSync(second.cert, certFile); // the key is still the first one's
    expect(() => b.reloadTls()).toThrow();
    expect(await healthz(b.port)).toEqual({ status: 200, cn: 'first-cert' });
  });

  it('plain HTTP stays the default', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'bridge-tls-data-'));
    bridge = await startBridge(testConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir }), silentLogger);
    expect(bridge.url).toMatch(/^http:\/\//);
  });

  it('configuration: both files or neither, and readable', () => {
    expect(() => testConfig({ TLS_CERT_FILE: certFile })).toThrow(
      /TLS_CERT_FILE and TLS_KEY_FILE must be set together/,
    );
    const missing = join(dir, 'nope.pem');
    expect(() => testConfig({ TLS_CERT_FILE: missing, TLS_KEY_FILE: keyFile })).toThrow(
      /TLS_CERT_FILE: cannot read .*nope\.pem/,
    );
  });
});

describe.skipIf(!haveOpenssl)('TLS in the real process', () => {
  let proc: BridgeProcess | undefined;
  afterEach(async () => {
    await proc?.cleanup();
    proc = undefined;
    install(first);
  });

  it('SIGHUP reloads the certificate; a broken pair is logged and the old one kept', async () => {
    proc = await spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      TLS_CERT_FILE: certFile,
      TLS_KEY_FILE: keyFile,
    });
    const listening = proc.lines.find((l) => l.msg === 'volc-scim-bridge listening');
    expect(listening).toMatchObject({ tls: true, url: expect.stringMatching(/^https:/) });
    expect((await healthz(proc.port)).cn).toBe('first-cert');

    writeFileSync(keyFile, 'not a key');
    proc.child.kill('SIGHUP');
    await waitForLine(proc, 'SIGHUP: TLS certificate not reloaded; the previous one stays in use');
    expect(await healthz(proc.port)).toEqual({ status: 200, cn: 'first-cert' });

    install(second);
    proc.child.kill('SIGHUP');
    await waitForLine(proc, 'SIGHUP: TLS certificate reloaded');
    expect(await healthz(proc.port)).toEqual({ status: 200, cn: 'second-cert' });
    expect(proc.child.exitCode).toBeNull();
  });
});

async function waitForLine(proc: BridgeProcess, msg: string): Promise<void> {
  const until = Date.now() + 15_000;
  while (!proc.lines.some((l) => l.msg === msg)) {
    if (Date.now() > until) throw new Error(`no log line '${msg}'; stderr: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SIGHUP without TLS', () => {
  let proc: BridgeProcess | undefined;
  afterEach(async () => {
    await proc?.cleanup();
    proc = undefined;
  });

  it('is harmless on a plain-HTTP bridge: logged, nothing reloaded, the process keeps serving', async () => {
    proc = await spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], {});
    proc.child.kill('SIGHUP');
    await waitForLine(proc, 'SIGHUP: plain HTTP, nothing to reload');
    const res = await fetch(`http://127.0.0.1:${proc.port}/healthz`);
    expect(res.status).toBe(200);
    expect(proc.child.exitCode).toBeNull();
    expect(proc.child.signalCode).toBeNull();
  });
});
