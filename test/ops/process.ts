// Runs the bridge as a real child process and talks to it over real sockets.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Agent, type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresUrl } from '../helpers/postgres.js';

export interface BridgeProcess {
  child: ChildProcess;
  port: number;
  /** Parsed JSON log lines so far (stdout). */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  cleanup(): Promise<void>;
}

/**
 * DATABASE_URL of a fresh schema on the test PostgreSQL when it is reachable, else {} so the bridge
 * uses its embedded store.
 */
export async function fastStoreEnv(): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  const pg = await freshPostgresUrl('ops');
  if ('skip' in pg) return { env: {}, drop: async () => {} };
  return { env: { DATABASE_URL: pg.url }, drop: pg.drop };
}

/**
 * Spawns `command args` (e.g. node --import tsx src/main.ts) with PORT=0 and waits for the
 * 'volc-scim-bridge listening' log line, which carries the bound port.
 */
export async function spawnBridge(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<BridgeProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bridge-ops-'));
  const child = spawn(command, args, {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      SCIM_BEARER_TOKENS: 'test-token-0123456789abcdef',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffer = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${stderr}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          lines.push(line);
          if (line.msg === 'volc-scim-bridge listening') {
            clearTimeout(timer);
            resolve(Number(line.port));
          }
        } catch {
          // not JSON (should not happen with a non-TTY stdout)
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  return {
    child,
    port,
    lines,
    stderr: () => stderr,
    exited,
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function httpRequest(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: options.agent,
        headers: {
          ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
          ...(body
            ? { 'Content-Type': 'application/scim+json', 'Content-Length': Buffer.byteLength(body) }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs the real entry point (`node --import tsx src/main.ts …`) and collects its output. */
export function runMain(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
