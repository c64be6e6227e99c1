import type { Logger } from 'pino';

/** Kinds of injected failure; see faults.ts for what each one does on the wire. */
export type FaultKind =
  | 'FlowLimitExceeded'
  | 'InternalError'
  | 'ServiceUnavailableTemp'
  | 'ConcurrentException'
  | 'AccessDenied'
  | 'reset'
  | 'commitThenReset'
  | 'latency';

export interface FaultRule {
  /** An Action name, or '*' for every action. */
  action: string | '*';
  /** 0..1, drawn per matching request. */
  probability: number;
  fault: FaultKind;
  /** Required for fault 'latency'. */
  latencyMs?: number;
  /** Fire at most N times, then the rule is spent. */
  times?: number;
  /** Only for requests signed with this access key id (e.g. refuse one action to one IAM user). */
  accessKey?: string;
}

export interface EmulatorOptions {
  /** 0 = ephemeral; default 9100 for the standalone main, 0 for startEmulator. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Default 'cn-beijing'. */
  region?: string;
  /** Added to every action (not to the control API). */
  latencyMs?: number;
  /** Maximum number of users; CreateUser beyond it answers ReachedQuotaLimit. Default unlimited. */
  userQuota?: number;
  /** Case-insensitive substrings rejected in written string fields. */
  sensitiveWords?: string[];
  faults?: FaultRule[];
  /** Allowed |X-Date - now| in seconds. Default 900. */
  maxSkewSeconds?: number;
  /** Clock in ms since the epoch; tests pin it to signing vectors' X-Date. */
  now?: () => number;
  logger?: Logger;
  /**
   * SQLite file that keeps users, groups and memberships across restarts (created if missing,
   * locked while open). Absent: memory only.
   */
  stateFile?: string;
}

export interface RunningEmulator {
  url: string;
  port: number;
  /** Names this emulator's data: kept in the state file (the same across restarts), else new per start. */
  instanceId: string;
  setFaults(rules: FaultRule[]): void;
  reset(): void;
  calls(): Record<string, number>;
  counts(): { users: number; groups: number; memberships: number };
  /** Fast bulk insert for load tests. */
  seedUsers(n: number, prefix?: string): void;
  close(): Promise<void>;
}
