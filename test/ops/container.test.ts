import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { type BridgeProcess, httpRequest, spawnBridge } from './process.js';

// No Docker engine runs here: the Dockerfile is parsed and checked, its build steps are compared
// with what CI runs, and its start command is run against the built app.

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!current && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push((current + line).trim());
    current = '';
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const OP = op.toUpperCase();
    if (OP === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args[k] = v ?? '';
    } else if (OP === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = m[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? '');
      stages.push({ from, name: m[2], instructions: [] });
    } else {
      stages.at(-1)!.instructions.push({ op: OP, args: rest });
    }
  }
  return { args, stages };
}

/** ENV a=b c=d  or  ENV a b */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of stage.instructions.filter((i) => i.op === 'ENV')) {
    if (/^\w+\s+[^=]+$/.test(args) && !args.includes('=')) {
      const [k, ...v] = args.split(/\s+/);
      env[k] = v.join(' ');
    } else for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
  }
  return env;
}

const runs = (stage: Stage) =>
  stage.instructions.filter((i) => i.op === 'RUN').flatMap((i) => i.args.split('&&').map((c) => c.trim()));
const execForm = (stage: Stage, op: string): string[] | undefined => {
  const i = stage.instructions.filter((x) => x.op === op).at(-1);
  if (!i) return undefined;
  const json = op === 'HEALTHCHECK' ? i.args.replace(/^.*?\bCMD\s+/, '') : i.args;
  return JSON.parse(json) as string[];
};

const dockerfile = parseDockerfile(readFileSync('Dockerfile', 'utf8'));
const build = dockerfile.stages[0];
const runtime = dockerfile.stages.at(-1)!;
const ciScript = readFileSync('.ci/run', 'utf8')
  .split('\n')
  .map((l) => l.trim());
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  main: string;
  scripts: Record<string, string>;
  engines: { node: string };
};

/** Stages built FROM an image rather than FROM an earlier stage. */
const baseImages = dockerfile.stages
  .map((s) => s.from)
  .filter((from) => !dockerfile.stages.some((s) => s.name === from));
const COMPILERS = /\b(apt-get|apk|yum|dnf|gcc|g\+\+|make|python3?|node-gyp|build-essential)\b/;

describe('Dockerfile', () => {
  it('is multi-stage on one official Debian-slim Node LTS image, major 22 or later', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBe('build');
    expect(baseImages.length).toBe(dockerfile.stages.length);
    expect(new Set(baseImages).size).toBe(1);
    for (const from of baseImages) {
      // glibc (not Alpine/musl): better-sqlite3's prebuilt binary installs without a compiler.
      const m = /^node:(\d+)(\.\d+)*-(bookworm|trixie)-slim$/.exec(from);
      expect(m, from).not.toBeNull();
      const major = Number(m![1]);
      expect(major).toBeGreaterThanOrEqual(22);
      expect(major % 2, 'even majors are the LTS lines').toBe(0);
    }
  });

  it("the image's Node major is one better-sqlite3 and package.json engines support; engines still admit Node 20", () => {
    const major = /^node:(\d+)/.exec(baseImages[0]!)![1];
    const addon = JSON.parse(readFileSync('node_modules/better-sqlite3/package.json', 'utf8')) as {
      engines: { node: string };
    };
    expect(addon.engines.node.split('||').map((v) => v.trim())).toContain(`${major}.x`);
    // The code keeps running (and CI keeps testing) on Node 20.
    expect(pkg.engines.node).toMatch(/^>=20\.\d+\.\d+$/);
  });

  it('builds with exactly the commands CI runs (npm ci from the lockfile, npm run build), then prunes to production', () => {
    const npmSteps = runs(build).filter((r) => r.startsWith('npm '));
    expect(npmSteps).toEqual([
      'npm ci --no-audit --no-fund',
      'npm run build',
      'npm ci --omit=dev --no-audit --no-fund',
    ]);
    for (const step of npmSteps.slice(0, 2)) expect(ciScript).toContain(step);
    // The lockfile is copied before `npm ci`, so the install is exactly the locked tree.
    const copies = build.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies[0]).toBe('package.json package-lock.json ./');
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });

  it('the compiler toolchain for the native addon is installed in the build stage only', () => {
    const install = runs(build).find((r) => r.startsWith('apt-get install'));
    expect(install).toBeDefined();
    for (const tool of ['python3', 'make', 'g++']) expect(install!.split(/\s+/)).toContain(tool);
    // …before `npm ci`, which is when node-gyp would need it.
    const order = runs(build);
    expect(order.indexOf(install!)).toBeLessThan(order.indexOf('npm ci --no-audit --no-fund'));
    for (const stage of dockerfile.stages.slice(1)) {
      for (const r of runs(stage)) expect(r, `${stage.name}: ${r}`).not.toMatch(COMPILERS);
    }
  });

  it('ships dist/ and the production node_modules built in the build stage; no install at runtime', () => {
    const runtimeCopies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(runtimeCopies).toContain('--from=build /app/dist ./dist');
    expect(runtimeCopies).toContain('--from=build /app/node_modules ./node_modules');
    expect(runtimeCopies).toContain('package.json ./'); // "type": "module"
    expect(runs(runtime).some((r) => /\bnpm\b/.test(r))).toBe(false);
    // node_modules is pruned to production after the build, so no dev dependency reaches the image.
    const steps = runs(build);
    expect(steps.indexOf('npm ci --omit=dev --no-audit --no-fund')).toBeGreaterThan(
      steps.indexOf('npm run build'),
    );
  });

  it('runs as a non-root user with NODE_ENV=production and DATA_DIR on a volume', () => {
    const env = envOf(runtime);
    expect(env.NODE_ENV).toBe('production');
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    // Numeric, so Kubernetes can verify runAsNonRoot; 1000 is the image's `node` user, owner of /data.
    expect(user).toBe('1000:1000');
    expect(runs(runtime)).toContain(`chown 1000:1000 ${env.DATA_DIR}`);
    // The volume holds names and e-mail addresses: owner only (a named volume copies this mode).
    expect(runs(runtime)).toContain(`chmod 700 ${env.DATA_DIR}`);
    const volume = runtime.instructions.find((i) => i.op === 'VOLUME')?.args;
    expect(JSON.parse(volume!)).toContain(env.DATA_DIR);
    expect(runtime.instructions.find((i) => i.op === 'EXPOSE')?.args).toBe(env.PORT);
  });

  it('starts with an exec-form CMD, stops on SIGTERM and checks health with node (no curl) on /healthz', () => {
    expect(execForm(runtime, 'CMD')).toEqual(['node', pkg.main]);
    expect(runtime.instructions.find((i) => i.op === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    const health = execForm(runtime, 'HEALTHCHECK')!;
    expect(health[0]).toBe('node');
    expect(health.join(' ')).toContain('/healthz');
  });

  it('.dockerignore keeps secrets, local state and host builds out of the context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['.git', 'node_modules', 'dist', 'data', '.env', '.env.*', '*.sqlite', '*.sqlite-*'])
      expect(ignored).toContain(entry);
    // …but not what the build copies.
    for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      expect(ignored).not.toContain(needed);
  });
});

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

describe("the image's start command runs the built app", () => {
  let proc: BridgeProcess | undefined;
  let emulator: RunningEmulator | undefined;
  beforeAll(async () => {
    // CI builds right before the tests; rebuild here only when dist/ is missing or stale.
    let built = 0;
    try {
      built = statSync('dist/main.js').mtimeMs;
    } catch {}
    if (built < newestMtime('src')) {
      const [cmd, ...args] = runs(build)
        .find((r) => r === 'npm run build')!
        .split(' ');
      await promisify(execFile)(cmd, args, { cwd: process.cwd() });
    }
    const [command, ...args] = execForm(runtime, 'CMD')!;
    // The image's environment except DATA_DIR: spawnBridge's temporary directory stands in for /data.
    const { DATA_DIR: _volume, ...env } = envOf(runtime);
    // NODE_ENV=production refuses to start without credentials: the standalone emulator stands in
    // for CloudIdentity.
    emulator = await startEmulator({ port: 0 });
    proc = await spawnBridge(
      command,
      args,
      {
        ...env,
        PORT: '0',
        HOST: '127.0.0.1',
        VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
        VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
        VOLCENGINE_ENDPOINT: emulator.url,
      },
      120_000,
    );
  }, 300_000);
  afterAll(async () => {
    await proc?.cleanup();
    await emulator?.close();
  });

  it('answers /healthz, and the HEALTHCHECK command passes against it', async () => {
    const res = await httpRequest(proc!.port, 'GET', '/healthz');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    const [node, ...args] = execForm(runtime, 'HEALTHCHECK')!;
    const ok = spawnSync(node === 'node' ? process.execPath : node, args, {
      env: { PORT: String(proc!.port) },
      timeout: 10_000,
    });
    expect(ok.status).toBe(0);
    // Production JSON logs, no pretty printer, and nothing outside them.
    expect(proc!.lines.find((l) => l.msg === 'volc-scim-bridge listening')).toMatchObject({
      service: 'volc-scim-bridge',
    });
    expect(proc!.stderr()).toBe('');
  });

  it('the HEALTHCHECK fails once the process is gone', async () => {
    proc!.child.kill('SIGTERM');
    expect((await proc!.exited).code).toBe(0);
    const [, ...args] = execForm(runtime, 'HEALTHCHECK')!;
    const down = spawnSync(process.execPath, args, { env: { PORT: String(proc!.port) }, timeout: 10_000 });
    expect(down.status).toBe(1);
  });
});
