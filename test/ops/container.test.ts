import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
};

describe('Dockerfile', () => {
  it('is multi-stage on a small official Node 20 image', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const s of dockerfile.stages) expect(s.from).toMatch(/^node:20(\.\d+)*-(alpine|slim)$/);
    expect(build.name).toBe('build');
  });

  it('builds with exactly the commands CI runs (npm ci from the lockfile, npm run build)', () => {
    const steps = runs(build);
    expect(steps).toEqual(['npm ci --no-audit --no-fund', 'npm run build']);
    for (const step of steps) expect(ciScript).toContain(step);
    // The lockfile is copied before `npm ci`, so the install is exactly the locked tree.
    const copies = build.instructions.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies[0]).toBe('package.json package-lock.json ./');
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });

  it('ships production dependencies only, from the lockfile, plus the compiled dist/', () => {
    expect(runs(runtime)).toContain('npm ci --omit=dev --no-audit --no-fund');
    expect(runtime.instructions.map((i) => i.args)).toContain('package.json package-lock.json ./');
    expect(runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args)).toContain(
      '--from=build /app/dist ./dist',
    );
    expect(runs(runtime).some((r) => /npm (i|install)\b(?!.*--omit=dev)/.test(r))).toBe(false);
  });

  it('runs as a non-root user with NODE_ENV=production and DATA_DIR on a volume', () => {
    const env = envOf(runtime);
    expect(env.NODE_ENV).toBe('production');
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toMatch(/^\d+(:\d+)?$/); // numeric, so Kubernetes can verify runAsNonRoot
    const volume = runtime.instructions.find((i) => i.op === 'VOLUME')?.args;
    expect(JSON.parse(volume!)).toContain(env.DATA_DIR);
    expect(runtime.instructions.find((i) => i.op === 'EXPOSE')?.args).toBe(env.PORT);
  });

  it('starts with an exec-form CMD and checks health with node (no curl) on /healthz', () => {
    expect(execForm(runtime, 'CMD')).toEqual(['node', pkg.main]);
    const health = execForm(runtime, 'HEALTHCHECK')!;
    expect(health[0]).toBe('node');
    expect(health.join(' ')).toContain('/healthz');
  });

  it('.dockerignore keeps secrets, local state and host builds out of the context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['.git', 'node_modules', 'dist', 'data', '.env', '.env.*'])
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
  beforeAll(async () => {
    // CI builds right before the tests; rebuild here only when dist/ is missing or stale.
    let built = 0;
    try {
      built = statSync('dist/main.js').mtimeMs;
    } catch {}
    if (built < newestMtime('src')) {
      const [cmd, ...args] = runs(build)[1].split(' ');
      await promisify(execFile)(cmd, args, { cwd: process.cwd() });
    }
    const [command, ...args] = execForm(runtime, 'CMD')!;
    const env = envOf(runtime);
    proc = await spawnBridge(command, args, { ...env, PORT: '0', HOST: '127.0.0.1' }, 120_000);
  }, 300_000);
  afterAll(async () => {
    await proc?.cleanup();
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
    // Production JSON logs, no pretty printer.
    expect(proc!.lines.find((l) => l.msg === 'volc-scim-bridge listening')).toMatchObject({
      service: 'volc-scim-bridge',
    });
  });

  it('the HEALTHCHECK fails once the process is gone', async () => {
    proc!.child.kill('SIGTERM');
    expect((await proc!.exited).code).toBe(0);
    const [, ...args] = execForm(runtime, 'HEALTHCHECK')!;
    const down = spawnSync(process.execPath, args, { env: { PORT: String(proc!.port) }, timeout: 10_000 });
    expect(down.status).toBe(1);
  });
});
