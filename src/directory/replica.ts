import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

// Which bridge process this is, for the console ("served by") and for what the reconciler leader
// publishes. Host name and pid alone repeat: in a container the pid is 1 and a restarted container
// keeps its host name, so a short random part tells one start from the next.

export interface ReplicaIdentity {
  /** `<hostname>#<pid>-<random>`: unique per start, stable for the life of the process. */
  id: string;
  hostname: string;
  pid: number;
  startedAt: string;
}

export function newReplicaIdentity(): ReplicaIdentity {
  const host = hostname() || 'unknown-host';
  return {
    id: `${host}#${process.pid}-${randomBytes(2).toString('hex')}`,
    hostname: host,
    pid: process.pid,
    startedAt: new Date().toISOString(),
  };
}
