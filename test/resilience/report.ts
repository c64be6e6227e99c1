// Report of the long resilience run: each test file writes its section (markdown) and its figures
// (JSON); the global teardown of test/resilience/vitest.config.ts joins them into results/latest.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LONG = process.env.RESILIENCE_LONG === '1';
export const RESULTS_DIR = join(process.cwd(), 'test', 'resilience', 'results');
export const PARTS_DIR = join(RESULTS_DIR, '.parts');

export interface PartFigures {
  operations?: number;
  requests?: number;
  faults?: number;
  fuzzCases?: number;
  restarts?: number;
  lost?: number;
  failures?: number;
}

/** Writes one section of the report (only in the long run); `order` sorts the sections. */
export function writeReportPart(order: number, name: string, lines: string[], figures: PartFigures): void {
  if (!LONG) return;
  mkdirSync(PARTS_DIR, { recursive: true });
  const base = join(PARTS_DIR, `${String(order).padStart(2, '0')}-${name}`);
  writeFileSync(`${base}.md`, `${lines.join('\n')}\n`);
  writeFileSync(`${base}.json`, JSON.stringify(figures));
}

/** A seed from SOAK_SEED, else a fresh one (printed with every failure). */
export function seedFromEnv(): number {
  const fixed = Number(process.env.SOAK_SEED);
  return Number.isSafeInteger(fixed) && fixed > 0 ? fixed : 1 + Math.floor(Math.random() * 1_000_000);
}
