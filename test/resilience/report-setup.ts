// Global setup of the long resilience run: clears the report parts before, joins them after.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { PARTS_DIR, type PartFigures, RESULTS_DIR } from './report.js';

export function setup(): void {
  rmSync(PARTS_DIR, { recursive: true, force: true });
}

export function teardown(): void {
  if (!existsSync(PARTS_DIR)) return;
  const files = readdirSync(PARTS_DIR).sort();
  const sections = files
    .filter((f) => f.endsWith('.md'))
    .map((f) => readFileSync(join(PARTS_DIR, f), 'utf8'));
  const figures = files
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(PARTS_DIR, f), 'utf8')) as PartFigures);
  const sum = (k: keyof PartFigures) => figures.reduce((s, f) => s + (f[k] ?? 0), 0);
  const cpu = cpus();
  const lines = [
    '# Resilience run (`npm run test:resilience`)',
    '',
    `${new Date().toISOString()} · Node ${process.versions.node} · ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'} · ${Math.round(totalmem() / 2 ** 30)} GiB · shared machine`,
    '',
    '| operations | SCIM requests | faults injected | fuzz cases | restarts (SIGKILL) | lost | failures |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${sum('operations')} | ${sum('requests')} | ${sum('faults')} | ${sum('fuzzCases')} | ${sum('restarts')} | **${sum('lost')}** | ${sum('failures')} |`,
    '',
    '"lost" counts users, groups, attribute values and memberships that differ from the intended state at the end, plus duplicates, orphans, deactivated users still in CloudIdentity and store inconsistencies. "failures" counts invalid SCIM answers, client-side violations and fuzz invariant breaks.',
    '',
    ...sections,
  ];
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'latest.md'), `${lines.join('\n').trimEnd()}\n`);
  rmSync(PARTS_DIR, { recursive: true, force: true });
}
