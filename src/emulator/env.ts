import { z } from 'zod';
import { describeIssues, faultRulesSchema } from './faults.js';
import type { EmulatorOptions } from './types.js';

export interface EmulatorEnvConfig {
  options: EmulatorOptions & { port: number; host: string; region: string };
  seedUsers: number;
  logLevel: string;
  /** True when VOLCENGINE_ACCESS_KEY/SECRET_KEY were unset and the dev pair is in use. */
  devCredentials: boolean;
}

/** Appends the offending value to a problem line (never for the secret). */
function withValue(line: string, env: NodeJS.ProcessEnv): string {
  const name = /^[A-Z_]+/.exec(line)?.[0];
  if (!name || name === 'VOLCENGINE_SECRET_KEY' || name === 'EMULATOR_FAULTS') return line;
  const value = env[name];
  if (value === undefined) return line;
  return `${line} (got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)})`;
}

export type EnvParseResult = { ok: true; config: EmulatorEnvConfig } | { ok: false; message: string };

// Empty strings count as unset, so `EMULATOR_PORT= npm run emulator` behaves like no variable.
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalInt = (min: number, max: number) => {
  const message = `must be a whole number between ${min} and ${max}`;
  return z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+$/, message)
      .transform(Number)
      .pipe(z.int().min(min, message).max(max, message))
      .optional(),
  );
};
const intWithDefault = (min: number, max: number, dflt: number) =>
  optionalInt(min, max).transform((v) => v ?? dflt);

const envSchema = z.object({
  EMULATOR_PORT: intWithDefault(0, 65535, 9100),
  EMULATOR_HOST: z.preprocess(blankToUndefined, z.string().default('127.0.0.1')),
  VOLCENGINE_ACCESS_KEY: z.preprocess(blankToUndefined, z.string().optional()),
  VOLCENGINE_SECRET_KEY: z.preprocess(blankToUndefined, z.string().optional()),
  VOLCENGINE_REGION: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[a-z0-9-]+$/, 'must be a region id such as cn-beijing')
      .default('cn-beijing'),
  ),
  EMULATOR_LATENCY_MS: intWithDefault(0, 600_000, 0),
  EMULATOR_USER_QUOTA: optionalInt(0, Number.MAX_SAFE_INTEGER),
  EMULATOR_SENSITIVE_WORDS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .optional()
      .transform((s) =>
        (s ?? '')
          .split(',')
          .map((w) => w.trim())
          .filter((w) => w !== ''),
      ),
  ),
  EMULATOR_FAULTS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .optional()
      .transform((s, ctx) => {
        if (s === undefined) return [];
        try {
          return JSON.parse(s) as unknown;
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(err as Error).message})` });
          return z.NEVER;
        }
      })
      .pipe(faultRulesSchema),
  ),
  EMULATOR_SEED_USERS: intWithDefault(0, 10_000_000, 0),
  EMULATOR_STATE_FILE: z.preprocess(blankToUndefined, z.string().optional()),
  EMULATOR_LOG_LEVEL: z.preprocess(
    blankToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
});

/** Reads the standalone emulator's configuration; on failure one message lists every problem. */
export function parseEmulatorEnv(env: NodeJS.ProcessEnv): EnvParseResult {
  const parsed = envSchema.safeParse(env);
  const problems = parsed.success ? [] : describeIssues(parsed.error).map((line) => withValue(line, env));
  // Checked outside the schema so it is reported even when other variables are wrong too. A lone key
  // or secret is almost certainly a mistake; silently falling back to the dev pair would hide it.
  const hasKey = blankToUndefined(env.VOLCENGINE_ACCESS_KEY) !== undefined;
  const hasSecret = blankToUndefined(env.VOLCENGINE_SECRET_KEY) !== undefined;
  if (hasKey !== hasSecret) {
    problems.push(
      `${hasKey ? 'VOLCENGINE_SECRET_KEY' : 'VOLCENGINE_ACCESS_KEY'}: must be set together with ` +
        `${hasKey ? 'VOLCENGINE_ACCESS_KEY' : 'VOLCENGINE_SECRET_KEY'} (or leave both unset for the dev credentials)`,
    );
  }
  if (!parsed.success || problems.length > 0) {
    return {
      ok: false,
      message: `Invalid emulator configuration:\n${problems.map((l) => `  - ${l}`).join('\n')}`,
    };
  }
  const e = parsed.data;
  const devCredentials = e.VOLCENGINE_ACCESS_KEY === undefined;
  return {
    ok: true,
    config: {
      options: {
        port: e.EMULATOR_PORT,
        host: e.EMULATOR_HOST,
        region: e.VOLCENGINE_REGION,
        latencyMs: e.EMULATOR_LATENCY_MS,
        sensitiveWords: e.EMULATOR_SENSITIVE_WORDS,
        faults: e.EMULATOR_FAULTS,
        ...(e.VOLCENGINE_ACCESS_KEY !== undefined ? { accessKeyId: e.VOLCENGINE_ACCESS_KEY } : {}),
        ...(e.VOLCENGINE_SECRET_KEY !== undefined ? { secretAccessKey: e.VOLCENGINE_SECRET_KEY } : {}),
        ...(e.EMULATOR_USER_QUOTA !== undefined ? { userQuota: e.EMULATOR_USER_QUOTA } : {}),
        ...(e.EMULATOR_STATE_FILE !== undefined ? { stateFile: e.EMULATOR_STATE_FILE } : {}),
      },
      seedUsers: e.EMULATOR_SEED_USERS,
      logLevel: e.EMULATOR_LOG_LEVEL,
      devCredentials,
    },
  };
}
