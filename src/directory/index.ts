// The directories and the reconciler, built once per bridge around one set of resource locks and
// one intent registry: requests and the reconciler settle the same intents with the same code.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { BridgeStore } from '../store/types.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import { DriftChecker } from './drift.js';
import { GroupDirectory } from './groups.js';
import { Intents } from './intents.js';
import { Reconciler, type ReconcilerMetrics } from './reconciler.js';
import { ReconcilerStatus } from './reconciler-status.js';
import { newReplicaIdentity, type ReplicaIdentity } from './replica.js';
import { ResourceLocks } from './resource-locks.js';
import { UserDirectory } from './users.js';

export interface Directories {
  users: UserDirectory;
  groups: GroupDirectory;
  intents: Intents;
  locks: ResourceLocks;
  reconciler: Reconciler;
  /** The reconciler leader's published status (any replica reads it). */
  reconcilerStatus: ReconcilerStatus;
  /** This bridge among the replicas. */
  replica: ReplicaIdentity;
}

export interface DirectoryDeps {
  config: Config;
  api: CloudIdentityApi;
  store: BridgeStore;
  logger: Logger;
  metrics?: ReconcilerMetrics;
  /** A fresh set when omitted. */
  locks?: ResourceLocks;
  /** A fresh identity when omitted. */
  replica?: ReplicaIdentity;
}

export function buildDirectories(deps: DirectoryDeps): Directories {
  const { config, api, logger, store } = deps;
  // One set of locks for both directories: a group's member change also takes that user's key.
  const locks = deps.locks ?? new ResourceLocks();
  const intents = new Intents(store);
  const users = new UserDirectory(api, store, {
    locks,
    intents,
    deactivateAction: config.deactivateAction,
    filterScanLimit: config.filterScanLimit,
    // No request outlives its deadline by much, so a create pending for longer was interrupted (a
    // crash, or a failure whose outcome could not be checked): a retried POST may take it over.
    pendingTakeoverMs: config.requestDeadlineMs + 10_000,
    logger,
  });
  const groups = new GroupDirectory(api, store, {
    filterScanLimit: config.filterScanLimit,
    logger,
    locks,
    intents,
  });
  const reconcilerLogger = logger.child({ component: 'reconciler' });
  const drift = new DriftChecker({
    api,
    store,
    locks,
    lifecycle: users.lifecycle,
    members: groups.memberOps,
    deactivateAction: config.deactivateAction,
    logger: reconcilerLogger,
  });
  const replica = deps.replica ?? newReplicaIdentity();
  const reconcilerStatus = new ReconcilerStatus({
    store,
    replica: replica.id,
    intervalMs: config.reconcile.intervalMs,
    logger: reconcilerLogger,
  });
  const reconciler = new Reconciler({
    store,
    api,
    locks,
    intents,
    drift,
    logger: reconcilerLogger,
    metrics: deps.metrics,
    intervalMs: config.reconcile.intervalMs,
    batch: config.reconcile.batch,
    backoffMaxMs: config.reconcile.backoffMaxMs,
    driftIntervalMs: config.reconcile.driftIntervalMs,
    driftBudget: config.reconcile.driftBudget,
    attemptDeadlineMs: config.requestDeadlineMs,
    onRun: (report, result) => reconcilerStatus.publish(report, result),
  });
  return { users, groups, intents, locks, reconciler, reconcilerStatus, replica };
}
