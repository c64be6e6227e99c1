import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

// Every environment variable the bridge reads, validated in one place. An invalid configuration
// produces one message listing every problem, so an operator fixes them all in one go.

/**
 * A whole number in [min, max], `def` when the variable is unset. Set but empty is an error, not
 * the default and not 0 (`PORT=` would otherwise listen on a random port); so are `1e3`, `0x50`, `8.5`.
 */
const intFrom = (def: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return def;
      const text = raw.trim();
      const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
      if (n >= min && n <= max) return n;
      ctx.addIssue({
        code: 'custom',
        message:
          text === ''
            ? `is set but empty; unset it for the default (${def}) or give a whole number from ${min} to ${max}`
            : `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}...` : raw)})`,
      });
      return z.NEVER;
    });

const booleanFrom = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const envSchema = z.object({
  PORT: intFrom(8080, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PII: booleanFrom(false),
  NODE_ENV: z.string().default('development'),
  PUBLIC_BASE_URL: optionalString.pipe(z.url().optional()),
  SCIM_BEARER_TOKENS: optionalString,
  VOLCENGINE_ACCESS_KEY: optionalString,
  VOLCENGINE_SECRET_KEY: optionalString,
  VOLCENGINE_SESSION_TOKEN: optionalString,
  VOLCENGINE_REGION: z.string().min(1).default('cn-beijing'),
  VOLCENGINE_ENDPOINT: z.url().default('https://open.volcengineapi.com'),
  UPSTREAM_ATTEMPT_TIMEOUT_MS: intFrom(10_000, 100, 120_000),
  UPSTREAM_MAX_ATTEMPTS: intFrom(4, 1, 10),
  UPSTREAM_MUTATION_CONCURRENCY: intFrom(0, 0, 1000),
  UPSTREAM_CONNECTIONS: intFrom(32, 1, 1024),
  REQUEST_DEADLINE_MS: intFrom(45_000, 1_000, 58_000),
  DEACTIVATE_ACTION: z.enum(['delete', 'retain']).default('delete'),
  DATABASE_URL: optionalString.refine((v) => v === undefined || /^postgres(ql)?:\/\/./.test(v), {
    message: 'must be a postgres:// or postgresql:// URL',
  }),
  DATA_DIR: z.string().default('./data'),
  MAX_BODY_BYTES: intFrom(1_048_576, 1024, 50 * 1_048_576),
  SCIM_MAX_PAGE_SIZE: intFrom(200, 1, 1000),
  FILTER_SCAN_LIMIT: intFrom(2_000, 100, 100_000),
  METRICS_TOKEN: optionalString,
  ADMIN_TOKENS: optionalString,
  MAX_MEMBERS_PER_REQUEST: intFrom(1000, 1, 100_000),
  TRUST_PROXY: optionalString.transform((v, ctx) => {
    const parsed = parseTrustProxy(v);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  }),
  SHUTDOWN_GRACE_MS: intFrom(20_000, 0, 600_000),
  SHUTDOWN_DELAY_MS: intFrom(0, 0, 120_000),
  READINESS_CACHE_MS: intFrom(5_000, 0, 300_000),
  // The reconciler (directory/reconciler.ts): tick, intents per tick, backoff cap, drift cadence and
  // budget. 0 disables the loop (intents are then settled only by the next request on the resource).
  RECONCILE_INTERVAL_MS: intFrom(5_000, 0, 60_000),
  RECONCILE_BATCH: intFrom(50, 1, 1_000),
  RECONCILE_BACKOFF_MAX_MS: intFrom(30_000, 1_000, 50_000),
  RECONCILE_DRIFT_INTERVAL_MS: intFrom(300_000, 0, 86_400_000),
  RECONCILE_DRIFT_BUDGET: intFrom(100, 1, 10_000),
  STORE_LOCK_LEASE_MS: intFrom(15_000, 1_000, 50_000),
  LIVENESS_STORE_TIMEOUT_MS: intFrom(120_000, 0, 86_400_000),
  HTTP_HEADERS_TIMEOUT_MS: intFrom(20_000, 100, 120_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: intFrom(65_000, 1_000, 900_000),
  EMULATOR_LATENCY_MS: intFrom(0, 0, 60_000),
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  AUDIT_RETENTION_DAYS: intFrom(180, 1, 36_500),
  // Rate limits (ops/rate-limits.ts): SCIM requests per token per second (averaged over 10 s
  // windows; 0: off), failed console sign-ins per client address and window, and the ceiling of
  // calls per second toward CloudIdentity (0: none), lowered for a while after FlowLimitExceeded.
  SCIM_RATE_LIMIT: intFrom(100, 0, 100_000),
  ADMIN_SIGNIN_MAX_FAILURES: intFrom(10, 1, 1_000),
  ADMIN_SIGNIN_WINDOW_SECONDS: intFrom(900, 1, 86_400),
  VOLCENGINE_MAX_RPS: intFrom(0, 0, 10_000),
  VOLCENGINE_THROTTLE_COOLDOWN_MS: intFrom(60_000, 1_000, 3_600_000),
  // The in-process emulator (no Volcengine credentials) listens on 127.0.0.1 at this port; 0: any free one.
  EMULATOR_PORT: intFrom(0, 0, 65_535),
});

/**
 * Variables that may instead name a file holding the value (`NAME_FILE`, the Docker and Kubernetes
 * secrets convention). TLS_CERT_FILE and TLS_KEY_FILE name files already.
 */
export const FILE_VARIABLES = [
  'VOLCENGINE_ACCESS_KEY',
  'VOLCENGINE_SECRET_KEY',
  'VOLCENGINE_SESSION_TOKEN',
  'SCIM_BEARER_TOKENS',
  'ADMIN_TOKENS',
  'METRICS_TOKEN',
  'DATABASE_URL',
] as const;

/** A secret file larger than this is not a secret file (a mistyped path to a log, a disk image). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * The environment with every `NAME_FILE` read into `NAME` (surrounding whitespace and the final
 * newline trimmed), and the problems found: both set, a file that cannot be read, is empty or too
 * large. A problem names the variables and the path, never what the file holds.
 */
export function readSecretFiles(env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; problems: string[] } {
  const out: NodeJS.ProcessEnv = { ...env };
  const problems: string[] = [];
  for (const name of FILE_VARIABLES) {
    const fileVar = `${name}_FILE`;
    const path = env[fileVar]?.trim();
    delete out[fileVar];
    if (!path) continue;
    if (env[name]?.trim()) {
      problems.push(`${name}: both ${name} and ${fileVar} are set; set only one of them`);
      continue;
    }
    try {
      if (statSync(path).size > MAX_SECRET_FILE_BYTES) {
        problems.push(`${fileVar}: ${path} is larger than 64 KiB; it should hold only the value of ${name}`);
        continue;
      }
      const value = readFileSync(path, 'utf8').trim();
      if (value === '') {
        problems.push(`${fileVar}: ${path} is empty`);
        continue;
      }
      out[name] = value;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      problems.push(`${fileVar}: cannot read ${path} (${code})`);
    }
  }
  return { env: out, problems };
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY, as Express's `trust proxy` takes it: false (default: X-Forwarded-* ignored), true
 * (trust every hop: only behind a proxy that overwrites these headers), a hop count, or a comma
 * list of proxy addresses, CIDRs and the names loopback, linklocal, uniquelocal. A string result
 * is the problem.
 */
export function parseTrustProxy(value: string | undefined): boolean | number | string[] | string {
  if (value === undefined || value.toLowerCase() === 'false') return false;
  if (value.toLowerCase() === 'true') return true;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    return hops <= 32 ? hops : 'a hop count must be between 0 and 32';
  }
  const items = value.split(',').map((item) => item.trim());
  for (const item of items) {
    if (PROXY_NAMES.has(item.toLowerCase())) continue;
    const [address, prefix, extra] = item.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || extra !== undefined) {
      return `'${item}' is not true, false, a hop count, an IP address, a CIDR or loopback/linklocal/uniquelocal`;
    }
  }
  return items.map((item) => (PROXY_NAMES.has(item.toLowerCase()) ? item.toLowerCase() : item));
}

/**
 * Rules spanning several variables. Checked on the raw environment, apart from the schema, so
 * that they are reported together with every per-variable problem (zod skips object-level
 * refinements once a field has failed).
 */
function crossFieldProblems(raw: NodeJS.ProcessEnv): string[] {
  const value = (name: string) => {
    const v = raw[name]?.trim();
    return v ? v : undefined;
  };
  const problems: string[] = [];
  const accessKey = value('VOLCENGINE_ACCESS_KEY');
  if (Boolean(accessKey) !== Boolean(value('VOLCENGINE_SECRET_KEY'))) {
    problems.push(
      'VOLCENGINE_SECRET_KEY: VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY must be set together',
    );
  }
  if (value('NODE_ENV') === 'production' && !accessKey) {
    problems.push(
      'VOLCENGINE_ACCESS_KEY: NODE_ENV=production needs CloudIdentity credentials: set VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY ' +
        '(and SCIM_BEARER_TOKENS). Without them the bridge would run against its in-process emulator, which is for trials: ' +
        'for that, leave NODE_ENV unset',
    );
  }
  const labelled = splitTokens(value('SCIM_BEARER_TOKENS')).map(splitLabel);
  const tokens = labelled.map((t) => t.token);
  if (accessKey && tokens.length === 0) {
    problems.push(
      'SCIM_BEARER_TOKENS: real Volcengine credentials are set but no SCIM bearer token: refusing to expose CloudIdentity without authentication',
    );
  }
  if (tokens.some((t) => t.length < 16)) {
    problems.push('SCIM_BEARER_TOKENS: every SCIM bearer token must be at least 16 characters long');
  }
  const labels = labelled.flatMap((t) => (t.label ? [t.label] : []));
  if (new Set(labels).size !== labels.length) {
    problems.push('SCIM_BEARER_TOKENS: a label names two tokens; each label must name one client');
  }
  const admins = splitTokens(value('ADMIN_TOKENS')).map(splitLabel);
  if (admins.some((t) => t.token.length < 16)) {
    problems.push('ADMIN_TOKENS: every admin token must be at least 16 characters long');
  }
  const adminLabels = admins.flatMap((t) => (t.label ? [t.label] : []));
  if (new Set(adminLabels).size !== adminLabels.length) {
    problems.push('ADMIN_TOKENS: a label names two tokens; each label must name one operator');
  }
  const cert = value('TLS_CERT_FILE');
  const key = value('TLS_KEY_FILE');
  if (Boolean(cert) !== Boolean(key)) {
    problems.push('TLS_KEY_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  for (const [name, file] of [
    ['TLS_CERT_FILE', cert],
    ['TLS_KEY_FILE', key],
  ] as const) {
    if (file && !readable(file)) problems.push(`${name}: cannot read ${file}`);
  }
  const interval = Number(value('RECONCILE_INTERVAL_MS') ?? 5_000);
  const cap = Number(value('RECONCILE_BACKOFF_MAX_MS') ?? 30_000);
  if (interval + cap > 55_000) {
    problems.push(
      'RECONCILE_BACKOFF_MAX_MS: with RECONCILE_INTERVAL_MS it must stay within 55000 ms, so that intents settle within 60 s of CloudIdentity being healthy',
    );
  }
  const lease = Number(value('STORE_LOCK_LEASE_MS') ?? 15_000);
  if (interval + lease > 55_000) {
    problems.push(
      'STORE_LOCK_LEASE_MS: with RECONCILE_INTERVAL_MS it must stay within 55000 ms, so that a cut-off reconciler leader is replaced within 60 s',
    );
  }
  const metricsToken = value('METRICS_TOKEN');
  if (metricsToken && metricsToken.length < 16) {
    problems.push('METRICS_TOKEN: must be at least 16 characters long');
  }
  return problems;
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export interface Config {
  port: number;
  host: string;
  logLevel: string;
  logPii: boolean;
  production: boolean;
  publicBaseUrl?: string;
  scimTokens: string[];
  /** The label of each of scimTokens (same order), from `label:TOKEN`; undefined when unlabelled. */
  scimTokenLabels: Array<string | undefined>;
  /** true when no SCIM_BEARER_TOKENS was given and a token was generated for this run */
  scimTokenGenerated: boolean;
  /** undefined: run against the in-process emulator */
  volcengine?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region: string;
  endpoint: string;
  upstreamAttemptTimeoutMs: number;
  upstreamMaxAttempts: number;
  upstreamMutationConcurrency: number;
  upstreamConnections: number;
  requestDeadlineMs: number;
  deactivateAction: 'delete' | 'retain';
  databaseUrl?: string;
  dataDir: string;
  maxBodyBytes: number;
  maxPageSize: number;
  filterScanLimit: number;
  metricsToken?: string;
  /** Tokens for /admin and /admin/api/* (operator console, reconciler report); empty: both are off. */
  adminTokens: string[];
  /** The label of each of adminTokens (`alice:TOKEN`), naming the operator in the audit trail. */
  adminTokenLabels: Array<string | undefined>;
  /** Member values one group POST, PUT or PATCH may name (refused with 400 past it). */
  maxMembersPerRequest: number;
  /** Express `trust proxy`: only then do X-Forwarded-Proto/-Host shape meta.location (without PUBLIC_BASE_URL). */
  trustProxy: boolean | number | string[];
  shutdownGraceMs: number;
  /** Time between readiness turning 503 and the server closing its listener (load balancers catch up). */
  shutdownDelayMs: number;
  readinessCacheMs: number;
  reconcile: {
    /** 0: no background loop. */
    intervalMs: number;
    batch: number;
    backoffMaxMs: number;
    /** 0: no drift checks. */
    driftIntervalMs: number;
    driftBudget: number;
  };
  /** PostgreSQL: how long a frozen or cut-off replica keeps its locks (reconciler lead, resources). */
  storeLockLeaseMs: number;
  /** /healthz fails once the store has not answered the background checks for this long; 0: never. */
  livenessStoreTimeoutMs: number;
  httpHeadersTimeoutMs: number;
  httpKeepAliveTimeoutMs: number;
  emulatorLatencyMs: number;
  /** Serve HTTPS with these PEM files (re-read on SIGHUP); undefined: plain HTTP. */
  tls?: { certFile: string; keyFile: string };
  /** Audit records older than this are pruned in the background. */
  auditRetentionDays: number;
  rateLimits: {
    /** SCIM requests per token per second, averaged over 10 s windows; 0: no limit. */
    scimPerSecond: number;
    /** Failed console sign-ins one client address may make per window before it is refused. */
    signinMaxFailures: number;
    signinWindowSeconds: number;
    /** Calls per second toward CloudIdentity, all replicas together on PostgreSQL; 0: no ceiling. */
    upstreamMaxRps: number;
    /** How long the ceiling stays halved after CloudIdentity answered FlowLimitExceeded. */
    upstreamCooldownMs: number;
  };
  /** The in-process emulator's port (no Volcengine credentials); 0: any free port. */
  emulatorPort: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Comma-separated; a file (`SCIM_BEARER_TOKENS_FILE`) may also hold one token per line. */
function splitTokens(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\r\n]/)
    .map((t) => t.trim())
    .filter(Boolean);
}

const LABEL = /^([A-Za-z0-9_.-]{1,40}):(.+)$/;

/**
 * `okta:TOKEN` → label okta, so the audit trail can say which client wrote. A token that itself
 * starts with such a prefix must be given a label (`name:prefix:rest`).
 */
export function splitLabel(entry: string): { label?: string; token: string } {
  const match = LABEL.exec(entry);
  return match ? { label: match[1], token: match[2] } : { token: entry };
}

export function loadConfig(rawEnv: NodeJS.ProcessEnv = process.env, generateToken: () => string): Config {
  const { env, problems: fileProblems } = readSecretFiles(rawEnv);
  const parsed = envSchema.safeParse(env);
  const problems = [
    ...fileProblems,
    ...(parsed.success
      ? []
      : parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`)),
    ...crossFieldProblems(env),
  ];
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const e = parsed.data;
  const labelled = splitTokens(e.SCIM_BEARER_TOKENS).map(splitLabel);
  const scimTokenGenerated = labelled.length === 0;
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logPii: e.LOG_PII,
    production: e.NODE_ENV === 'production',
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    scimTokens: scimTokenGenerated ? [generateToken()] : labelled.map((t) => t.token),
    scimTokenLabels: scimTokenGenerated ? [undefined] : labelled.map((t) => t.label),
    scimTokenGenerated,
    volcengine:
      e.VOLCENGINE_ACCESS_KEY && e.VOLCENGINE_SECRET_KEY
        ? {
            accessKeyId: e.VOLCENGINE_ACCESS_KEY,
            secretAccessKey: e.VOLCENGINE_SECRET_KEY,
            sessionToken: e.VOLCENGINE_SESSION_TOKEN,
          }
        : undefined,
    region: e.VOLCENGINE_REGION,
    endpoint: e.VOLCENGINE_ENDPOINT,
    upstreamAttemptTimeoutMs: e.UPSTREAM_ATTEMPT_TIMEOUT_MS,
    upstreamMaxAttempts: e.UPSTREAM_MAX_ATTEMPTS,
    upstreamMutationConcurrency: e.UPSTREAM_MUTATION_CONCURRENCY,
    upstreamConnections: e.UPSTREAM_CONNECTIONS,
    requestDeadlineMs: e.REQUEST_DEADLINE_MS,
    deactivateAction: e.DEACTIVATE_ACTION,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxPageSize: e.SCIM_MAX_PAGE_SIZE,
    filterScanLimit: e.FILTER_SCAN_LIMIT,
    metricsToken: e.METRICS_TOKEN,
    adminTokens: splitTokens(e.ADMIN_TOKENS).map((t) => splitLabel(t).token),
    adminTokenLabels: splitTokens(e.ADMIN_TOKENS).map((t) => splitLabel(t).label),
    maxMembersPerRequest: e.MAX_MEMBERS_PER_REQUEST,
    trustProxy: e.TRUST_PROXY,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    shutdownDelayMs: e.SHUTDOWN_DELAY_MS,
    readinessCacheMs: e.READINESS_CACHE_MS,
    reconcile: {
      intervalMs: e.RECONCILE_INTERVAL_MS,
      batch: e.RECONCILE_BATCH,
      backoffMaxMs: e.RECONCILE_BACKOFF_MAX_MS,
      driftIntervalMs: e.RECONCILE_DRIFT_INTERVAL_MS,
      driftBudget: e.RECONCILE_DRIFT_BUDGET,
    },
    storeLockLeaseMs: e.STORE_LOCK_LEASE_MS,
    livenessStoreTimeoutMs: e.LIVENESS_STORE_TIMEOUT_MS,
    httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
    httpKeepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    emulatorLatencyMs: e.EMULATOR_LATENCY_MS,
    ...(e.TLS_CERT_FILE && e.TLS_KEY_FILE
      ? { tls: { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } }
      : {}),
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    rateLimits: {
      scimPerSecond: e.SCIM_RATE_LIMIT,
      signinMaxFailures: e.ADMIN_SIGNIN_MAX_FAILURES,
      signinWindowSeconds: e.ADMIN_SIGNIN_WINDOW_SECONDS,
      upstreamMaxRps: e.VOLCENGINE_MAX_RPS,
      upstreamCooldownMs: e.VOLCENGINE_THROTTLE_COOLDOWN_MS,
    },
    emulatorPort: e.EMULATOR_PORT,
  };
}
