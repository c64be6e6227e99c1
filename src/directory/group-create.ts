// The group.create intent ("intent first", README "Consistency"). A group's SCIM id is CloudIdentity's
// GroupId, known only from CreateGroup's answer, so what only the store holds (externalId) would be
// lost with a create cut off between CreateGroup and the record (a crash, an answer lost and not
// verifiable). So a create first commits an intent, keyed by its displayName (unique in any case),
// holding the displayName and externalId, with the record that the create started; the create's final
// commit clears it. Whoever finishes a create left behind — the retried POST, the IdP's match by
// displayName, or the reconciler — settles it under the name's lock by the create recovery rule
// (create-recovery.ts): the group of exactly that DisplayName that no record maps, created
// (CreatedTime) no earlier than the second the intent was committed, is the one the create made and
// gets its record; anything else is not adopted and the intent goes. The members the create asked
// for are kept too: the settle that records the group leaves a group.members intent to add them.
import { randomUUID } from 'node:crypto';
import type { BridgeStore, GroupRecord, IntentRecord, JsonObject, NewGroupRecord } from '../store/types.js';
import type { CloudIdentityApi, CloudIdentityGroup } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { createdSince } from './create-recovery.js';
import type { MembersPayload } from './groups-members.js';
import { IntentKind, type Intents } from './intents.js';
import { UPSTREAM_PAGE } from './paging.js';
import { groupKey, type ResourceLocks, withResource } from './resource-locks.js';
import type { UnitOfWork } from './unit-of-work.js';

/** Pages of ListGroups (a substring search) read at most to find the exact DisplayName. */
const MAX_PAGES = 5;

/** The lock and intent key of creates of one displayName (any case). */
export const groupCreateKey = (displayName: string) => `group:create:${displayName.toLowerCase()}`;

export interface GroupCreatePayload extends JsonObject {
  displayName: string;
  externalId: string | null;
  /** The GroupName the first CreateGroup asked for (a retry of the name may add a suffix). */
  groupName: string;
  /** SCIM ids of the members to add (absent in intents of older builds: none). */
  members?: string[];
}

export class GroupCreates {
  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    private readonly locks: ResourceLocks,
    private readonly intents: Intents,
  ) {
    intents.register(IntentKind.groupCreate, (p, ctx, unit, intent) =>
      this.settle(p as GroupCreatePayload, ctx, unit, intent),
    );
  }

  /**
   * Settles, under the name's lock, a create of `displayName` left behind; returns the record it
   * made, if any. Costs one store query when there is none.
   */
  async settlePending(displayName: string, ctx: RequestContext): Promise<GroupRecord | null> {
    const key = groupCreateKey(displayName);
    if ((await this.store.intentsOf(key)).length === 0) return null;
    return withResource(this.locks, this.store, key, ctx.deadlineAt, () => this.settleLocked(key, ctx));
  }

  /** The same, for a caller that holds the name's lock. */
  async settleLocked(key: string, ctx: RequestContext): Promise<GroupRecord | null> {
    const pending = await this.store.intentsOf(key);
    if (pending.length === 0) return null;
    const { displayName } = pending[0].payload as GroupCreatePayload;
    const before = await this.store.findGroupByDisplayName(displayName);
    await this.intents.settle(key, ctx);
    // The name's lock keeps other creates of it out: a record that appeared is the one settled.
    return before ? null : this.store.findGroupByDisplayName(displayName);
  }

  /** The group the create of `displayName`, whose intent was committed at `since`, provably made. */
  async madeBy(displayName: string, since: string, ctx: RequestContext): Promise<CloudIdentityGroup | null> {
    const candidates: CloudIdentityGroup[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const r = await this.api.listGroups(
        { QueryString: displayName, PageNumber: page, PageSize: UPSTREAM_PAGE },
        callOptions(ctx),
      );
      candidates.push(...r.Groups.filter((g) => g.DisplayName === displayName && createdSince(g, since)));
      if (r.Groups.length < UPSTREAM_PAGE || page * UPSTREAM_PAGE >= r.Total) break;
    }
    if (candidates.length === 0) return null;
    const mapped = await this.store.getGroups(candidates.map((g) => g.GroupId));
    const unmapped = candidates.filter((g) => !mapped.has(g.GroupId));
    // One create per displayName at a time (the name's lock): two candidates cannot both be its own.
    return unmapped.length === 1 ? unmapped[0] : null;
  }

  private async settle(
    p: GroupCreatePayload,
    ctx: RequestContext,
    unit: UnitOfWork,
    intent: IntentRecord,
  ): Promise<void> {
    unit.subject.id = null;
    unit.subject.name = p.displayName;
    const group = await this.madeBy(p.displayName, intent.createdAt, ctx);
    if (!group) {
      unit.note('CreateGroup had made no group of this displayName: nothing to record');
      return;
    }
    const holder = await this.store.findGroupByDisplayName(p.displayName);
    if (holder) {
      unit.note(`displayName held by group ${holder.scimId}: group ${group.GroupId} not recorded`);
      return;
    }
    const record: NewGroupRecord = {
      scimId: group.GroupId,
      groupName: group.GroupName,
      displayName: p.displayName,
      externalId: p.externalId,
      attributes: {},
    };
    unit.subject.id = group.GroupId;
    unit
      .write({ op: 'insertGroup', record })
      .group(null, record)
      .note('finished a create interrupted after CreateGroup');
    const members = p.members ?? [];
    if (members.length > 0) {
      // Its members were not added yet: a member change of their own, settled like any other.
      const id = randomUUID();
      const change: MembersPayload = { groupId: group.GroupId, add: members, remove: [] };
      unit
        .write({
          op: 'putIntent',
          intent: { id, resource: groupKey(group.GroupId), kind: IntentKind.members, payload: change },
        })
        .note(`${members.length} member(s) the create asked for left to add (intent ${id})`);
    }
    ctx.log.info({ groupId: group.GroupId }, 'finished a group create interrupted after CreateGroup');
  }
}
