import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

// Every environment variable the bridge reads, validated in one place: one zod schema parses the
// environment (NAME_FILE secrets, per-variable checks, the rules that span several variables) into
// the Config the bridge runs with, whose type is the schema's output. An invalid configuration
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

/** Unset, empty or blank: undefined; otherwise the trimmed value. */
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** A path the bridge must be able to read (TLS PEM files). */
const readableFile = optionalString.transform((file, ctx) => {
  if (file !== undefined && !readable(file)) ctx.addIssue({ code: 'custom', message: `cannot read ${file}` });
  return file;
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
type SecretVariable = (typeof FILE_VARIABLES)[number];

/** A secret file larger than this is not a secret file (a mistyped path to a log, a disk image). */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * `NAME_FILE`: the content of the file it names, surrounding whitespace and the final newline
 * trimmed. A file that cannot be read, is empty or too large is a problem naming the variable and
 * the path, never what the file holds.
 */
const secretFile = (name: SecretVariable) =>
  optionalString.transform((path, ctx) => {
    if (path === undefined) return undefined;
    const problem = (message: string) => {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    };
    try {
      if (statSync(path).size > MAX_SECRET_FILE_BYTES)
        return problem(`${path} is larger than 64 KiB; it should hold only the value of ${name}`);
      const value = readFileSync(path, 'utf8').trim();
      return value === '' ? problem(`${path} is empty`) : value;
    } catch (err) {
      return problem(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });

const secretFiles = Object.fromEntries(FILE_VARIABLES.map((name) => [`${name}_FILE`, secretFile(name)])) as {
  [K in SecretVariable as `${K}_FILE`]: ReturnType<typeof secretFile>;
};

/** Each variable on its own, by its environment name. */
const variables = z.object({
  ...secretFiles,
  PORT: intFrom(8080, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PII: booleanFrom(false),
  NODE_ENV: z.string().trim().default('development'),
  PUBLIC_BASE_URL: optionalString.pipe(z.url().optional()).transform((url) => url?.replace(/\/+$/, '')),
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
  DATABASE_URL: optionalString,
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
  TLS_CERT_FILE: readableFile,
  TLS_KEY_FILE: readableFile,
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

type Variables = z.output<typeof variables>;
type Name = keyof Variables;

/** A secret's value, from NAME or else from the file NAME_FILE names. */
const secret = <N extends SecretVariable>(
  e: { [K in N | `${N}_FILE`]: string | undefined },
  name: N,
): string | undefined => e[name] ?? e[`${name}_FILE`];

/** The names a rule reads when it reads a secret: the variable and its _FILE. */
const withFile = <N extends SecretVariable>(name: N): [N, `${N}_FILE`] => [name, `${name}_FILE`];

/**
 * A rule spanning several variables. It runs once the variables it reads have each parsed (so a
 * bad value is reported once, by its own variable), even when other variables have failed, so
 * that its problem is reported together with every per-variable one (zod skips object-level
 * checks after a failed field unless told when to run them). Its type lets a rule read only the
 * variables it names.
 */
const rule = <K extends Name>(
  reads: readonly K[],
  check: (e: Pick<Variables, K>, problem: (name: K, message: string) => void) => void,
) =>
  z.superRefine<Pick<Variables, K>>(
    (e, ctx) => check(e, (name, message) => ctx.addIssue({ code: 'custom', path: [name], message })),
    { when: (payload) => !payload.issues.some((issue) => reads.includes(issue.path?.[0] as K)) },
  );

/** A secret is given as NAME or as NAME_FILE, not both. */
const onlyOneOf = <N extends SecretVariable>(name: N) =>
  rule(withFile(name), (e, problem) => {
    if (e[name] !== undefined && e[`${name}_FILE`] !== undefined)
      problem(name, `both ${name} and ${name}_FILE are set; set only one of them`);
  });

/** The rules spanning several variables, in the order their problems are listed. */
const rules = [
  ...FILE_VARIABLES.map(onlyOneOf),
  rule(withFile('DATABASE_URL'), (e, problem) => {
    const url = secret(e, 'DATABASE_URL');
    if (url !== undefined && !/^postgres(ql)?:\/\/./.test(url))
      problem('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
  }),
  rule([...withFile('VOLCENGINE_ACCESS_KEY'), ...withFile('VOLCENGINE_SECRET_KEY')], (e, problem) => {
    if (Boolean(secret(e, 'VOLCENGINE_ACCESS_KEY')) !== Boolean(secret(e, 'VOLCENGINE_SECRET_KEY')))
      problem(
        'VOLCENGINE_SECRET_KEY',
        'VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY must be set together',
      );
  }),
  rule(['NODE_ENV', ...withFile('VOLCENGINE_ACCESS_KEY')], (e, problem) => {
    if (e.NODE_ENV === 'production' && !secret(e, 'VOLCENGINE_ACCESS_KEY'))
      problem(
        'VOLCENGINE_ACCESS_KEY',
        'NODE_ENV=production needs CloudIdentity credentials: set VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY ' +
          '(and SCIM_BEARER_TOKENS). Without them the bridge would run against its in-process emulator, which is for trials: ' +
          'for that, leave NODE_ENV unset',
      );
  }),
  rule([...withFile('SCIM_BEARER_TOKENS'), ...withFile('VOLCENGINE_ACCESS_KEY')], (e, problem) => {
    const labelled = splitTokens(secret(e, 'SCIM_BEARER_TOKENS')).map(splitLabel);
    if (secret(e, 'VOLCENGINE_ACCESS_KEY') && labelled.length === 0)
      problem(
        'SCIM_BEARER_TOKENS',
        'real Volcengine credentials are set but no SCIM bearer token: refusing to expose CloudIdentity without authentication',
      );
    if (labelled.some((t) => t.token.length < 16))
      problem('SCIM_BEARER_TOKENS', 'every SCIM bearer token must be at least 16 characters long');
    const labels = labelled.flatMap((t) => (t.label ? [t.label] : []));
    if (new Set(labels).size !== labels.length)
      problem('SCIM_BEARER_TOKENS', 'a label names two tokens; each label must name one client');
  }),
  rule(withFile('ADMIN_TOKENS'), (e, problem) => {
    const admins = splitTokens(secret(e, 'ADMIN_TOKENS')).map(splitLabel);
    if (admins.some((t) => t.token.length < 16))
      problem('ADMIN_TOKENS', 'every admin token must be at least 16 characters long');
    const labels = admins.flatMap((t) => (t.label ? [t.label] : []));
    if (new Set(labels).size !== labels.length)
      problem('ADMIN_TOKENS', 'a label names two tokens; each label must name one operator');
  }),
  rule(['TLS_CERT_FILE', 'TLS_KEY_FILE'], (e, problem) => {
    if (Boolean(e.TLS_CERT_FILE) !== Boolean(e.TLS_KEY_FILE))
      problem('TLS_KEY_FILE', 'TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }),
  rule(['RECONCILE_INTERVAL_MS', 'RECONCILE_BACKOFF_MAX_MS'], (e, problem) => {
    if (e.RECONCILE_INTERVAL_MS + e.RECONCILE_BACKOFF_MAX_MS > 55_000)
      problem(
        'RECONCILE_BACKOFF_MAX_MS',
        'with RECONCILE_INTERVAL_MS it must stay within 55000 ms, so that intents settle within 60 s of CloudIdentity being healthy',
      );
  }),
  rule(['RECONCILE_INTERVAL_MS', 'STORE_LOCK_LEASE_MS'], (e, problem) => {
    if (e.RECONCILE_INTERVAL_MS + e.STORE_LOCK_LEASE_MS > 55_000)
      problem(
        'STORE_LOCK_LEASE_MS',
        'with RECONCILE_INTERVAL_MS it must stay within 55000 ms, so that a cut-off reconciler leader is replaced within 60 s',
      );
  }),
  rule(withFile('METRICS_TOKEN'), (e, problem) => {
    const token = secret(e, 'METRICS_TOKEN');
    if (token && token.length < 16) problem('METRICS_TOKEN', 'must be at least 16 characters long');
  }),
];

/**
 * The environment, parsed into the configuration. scimTokens is empty when SCIM_BEARER_TOKENS is
 * unset (scimTokenGenerated); loadConfig then fills in a token generated for this run.
 */
const configSchema = variables.check(...rules).transform((e) => {
  const labelled = splitTokens(secret(e, 'SCIM_BEARER_TOKENS')).map(splitLabel);
  const admins = splitTokens(secret(e, 'ADMIN_TOKENS')).map(splitLabel);
  const accessKeyId = secret(e, 'VOLCENGINE_ACCESS_KEY');
  const secretAccessKey = secret(e, 'VOLCENGINE_SECRET_KEY');
  const sessionToken = secret(e, 'VOLCENGINE_SESSION_TOKEN');
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logPii: e.LOG_PII,
    production: e.NODE_ENV === 'production',
    publicBaseUrl: e.PUBLIC_BASE_URL,
    scimTokens: labelled.map((t) => t.token),
    /** The label of each of scimTokens (same order), from `label:TOKEN`; undefined when unlabelled. */
    scimTokenLabels: labelled.map((t) => t.label),
    /** true when no SCIM_BEARER_TOKENS was given and a token was generated for this run */
    scimTokenGenerated: labelled.length === 0,
    /** undefined: run against the in-process emulator */
    volcengine:
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
        : undefined,
    region: e.VOLCENGINE_REGION,
    endpoint: e.VOLCENGINE_ENDPOINT,
    upstreamAttemptTimeoutMs: e.UPSTREAM_ATTEMPT_TIMEOUT_MS,
    upstreamMaxAttempts: e.UPSTREAM_MAX_ATTEMPTS,
    upstreamMutationConcurrency: e.UPSTREAM_MUTATION_CONCURRENCY,
    upstreamConnections: e.UPSTREAM_CONNECTIONS,
    requestDeadlineMs: e.REQUEST_DEADLINE_MS,
    deactivateAction: e.DEACTIVATE_ACTION,
    databaseUrl: secret(e, 'DATABASE_URL'),
    dataDir: e.DATA_DIR,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxPageSize: e.SCIM_MAX_PAGE_SIZE,
    filterScanLimit: e.FILTER_SCAN_LIMIT,
    metricsToken: secret(e, 'METRICS_TOKEN'),
    /** Tokens for /admin and /admin/api/* (operator console, reconciler report); empty: both are off. */
    adminTokens: admins.map((t) => t.token),
    /** The label of each of adminTokens (`alice:TOKEN`), naming the operator in the audit trail. */
    adminTokenLabels: admins.map((t) => t.label),
    /** Member values one group POST, PUT or PATCH may name (refused with 400 past it). */
    maxMembersPerRequest: e.MAX_MEMBERS_PER_REQUEST,
    /** Express `trust proxy`: only then do X-Forwarded-Proto/-Host shape meta.location (without PUBLIC_BASE_URL). */
    trustProxy: e.TRUST_PROXY,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    /** Time between readiness turning 503 and the server closing its listener (load balancers catch up). */
    shutdownDelayMs: e.SHUTDOWN_DELAY_MS,
    readinessCacheMs: e.READINESS_CACHE_MS,
    reconcile: {
      /** 0: no background loop. */
      intervalMs: e.RECONCILE_INTERVAL_MS,
      batch: e.RECONCILE_BATCH,
      backoffMaxMs: e.RECONCILE_BACKOFF_MAX_MS,
      /** 0: no drift checks. */
      driftIntervalMs: e.RECONCILE_DRIFT_INTERVAL_MS,
      driftBudget: e.RECONCILE_DRIFT_BUDGET,
    },
    /** PostgreSQL: how long a frozen or cut-off replica keeps its locks (reconciler lead, resources). */
    storeLockLeaseMs: e.STORE_LOCK_LEASE_MS,
    /** /healthz fails once the store has not answered the background checks for this long; 0: never. */
    livenessStoreTimeoutMs: e.LIVENESS_STORE_TIMEOUT_MS,
    httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
    httpKeepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    emulatorLatencyMs: e.EMULATOR_LATENCY_MS,
    /** Serve HTTPS with these PEM files (re-read on SIGHUP); undefined: plain HTTP. */
    tls:
      e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } : undefined,
    /** Audit records older than this are pruned in the background. */
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    rateLimits: {
      /** SCIM requests per token per second, averaged over 10 s windows; 0: no limit. */
      scimPerSecond: e.SCIM_RATE_LIMIT,
      /** Failed console sign-ins one client address may make per window before it is refused. */
      signinMaxFailures: e.ADMIN_SIGNIN_MAX_FAILURES,
      signinWindowSeconds: e.ADMIN_SIGNIN_WINDOW_SECONDS,
      /** Calls per second toward CloudIdentity, all replicas together on PostgreSQL; 0: no ceiling. */
      upstreamMaxRps: e.VOLCENGINE_MAX_RPS,
      /** How long the ceiling stays halved after CloudIdentity answered FlowLimitExceeded. */
      upstreamCooldownMs: e.VOLCENGINE_THROTTLE_COOLDOWN_MS,
    },
    /** The in-process emulator's port (no Volcengine credentials); 0: any free port. */
    emulatorPort: e.EMULATOR_PORT,
  };
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** The problems of a failed parse, each as `VARIABLE: what is wrong`. */
const problemsOf = (error: z.ZodError): string[] =>
  error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`);

export function loadConfig(env: NodeJS.ProcessEnv = process.env, generateToken: () => string): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(problemsOf(parsed.error));
  const config = parsed.data;
  return config.scimTokenGenerated
    ? { ...config, scimTokens: [generateToken()], scimTokenLabels: [undefined] }
    : config;
}

/**
 * DATABASE_URL, or the content of the file DATABASE_URL_FILE names, read by the same rules as the
 * bridge's (for `npm run store`, which needs nothing else from the environment).
 */
export function databaseUrlFrom(env: NodeJS.ProcessEnv): { databaseUrl?: string; problems: string[] } {
  const parsed = variables
    .pick({ DATABASE_URL: true, DATABASE_URL_FILE: true })
    .check(onlyOneOf('DATABASE_URL'))
    .safeParse(env);
  return parsed.success
    ? { databaseUrl: secret(parsed.data, 'DATABASE_URL'), problems: [] }
    : { problems: problemsOf(parsed.error) };
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

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
