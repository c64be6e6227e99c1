// What a leader publishes for every bridge sharing the store (table leader_status): the reconciler's
// leader writes its status after each run, so any replica's console can show it, and how old it is.

/** A leader's last published status. */
export interface PublishedLeaderStatus {
  /** The leadership it was published under, e.g. 'reconciler'. */
  role: string;
  /** The replica that published it (its identity, directory/replica.ts). */
  replica: string;
  publishedAt: string;
  /** How long ago it was published, by the store's clock (replicas' clocks may differ). */
  ageMs: number;
  status: Record<string, unknown>;
}

export interface LeaderStatusStore {
  /** Replaces the role's status with this replica's (one row per role). */
  publishLeaderStatus(role: string, replica: string, status: Record<string, unknown>): Promise<void>;
  /** The role's last published status, or null when none was. */
  leaderStatus(role: string): Promise<PublishedLeaderStatus | null>;
}
