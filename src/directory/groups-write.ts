// Writing groups: create (POST), replace (PUT), patch (PATCH) and delete, each but create under the
// group's lock with its pending intents settled first (a create runs under its displayName's lock and
// `group.create` intent, group-create.ts). Member changes go through GroupMembers
// (groups-members.ts) under the group's `group.members` intent; a delete runs under `group.delete`.
import { randomUUID } from 'node:crypto';
import type { AuditSubject } from '../audit/origin.js';
import type { GroupInput, GroupPatch } from '../scim-model/group-input.js';
import type { AuditMember } from '../store/audit-types.js';
import {
  type BridgeStore,
  type CommitResult,
  type GroupRecord,
  StoreConflictError,
  StoreStaleError,
  type StoreWrite,
} from '../store/types.js';
import { mapLimit } from '../volcengine/concurrency.js';
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityGroup } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { conflict, NotFoundError, notFound, preconditionFailed } from './errors.js';
import { type GroupCreatePayload, type GroupCreates, groupCreateKey } from './group-create.js';
import {
  displayNameOf,
  FALLBACK_GROUP_NAME,
  type GroupView,
  groupNameFor,
  groupVersion,
  withSuffix,
} from './group-mapping.js';
import type { GroupMembers, Resolved } from './groups-members.js';
import type { GroupReader } from './groups-read.js';
import { IntentKind, type Intents } from './intents.js';
import { UPSTREAM_PAGE } from './paging.js';
import { groupKey, type ResourceLocks, withResource } from './resource-locks.js';
import { etagMatches, isCode, mayHaveCommitted, SAFE_ID } from './shared.js';
import { commitProgress, UnitOfWork } from './unit-of-work.js';
import { getUpstreamGroup } from './upstream.js';

export interface GroupWriterOptions {
  /** Parallel upstream calls one request makes for member changes. */
  parallelism: number;
  /** Shared with the user directory: a group change holds the group's key, each member step the user's. */
  locks: ResourceLocks;
  intents: Intents;
  /** The group.create intents: settled by a retried POST before its own create. */
  creates: GroupCreates;
}

export class GroupWriter {
  private readonly parallelism: number;
  private readonly locks: ResourceLocks;
  private readonly intents: Intents;
  private readonly creates: GroupCreates;

  constructor(
    private readonly api: CloudIdentityApi,
    private readonly store: BridgeStore,
    /** The current view of a group, and the name lookups a create or rename checks. */
    private readonly reader: GroupReader,
    private readonly memberOps: GroupMembers,
    options: GroupWriterOptions,
  ) {
    this.parallelism = options.parallelism;
    this.locks = options.locks;
    this.intents = options.intents;
    this.creates = options.creates;
    this.intents.register(IntentKind.groupDelete, async (p, ctx, unit) => {
      try {
        await this.deleteUpstreamAndRecord(String(p.groupId), ctx, unit);
      } catch (e) {
        // Already gone: what the delete wanted.
        if (!(e instanceof NotFoundError)) throw e;
      }
    });
  }

  /**
   * Runs `fn` as the group's only writer (resource-locks.ts), after settling what an earlier request
   * on the group left half-done (its intents).
   */
  private withGroup<T>(groupId: string, ctx: RequestContext, fn: () => Promise<T>): Promise<T> {
    if (!SAFE_ID.test(groupId)) throw notFound(`Group ${groupId} not found`);
    return withResource(this.locks, this.store, groupKey(groupId), ctx.deadlineAt, async () => {
      await this.intents.settle(groupKey(groupId), ctx);
      return fn();
    });
  }

  /**
   * POST, under the displayName's lock (group-create.ts): a create of that name left behind is
   * settled first (the retried POST then answers with the group it made); then the group.create
   * intent with the record that the create started, CreateGroup, and one commit of the record, the
   * intent's clearing and the audit record (with the members' intent when members were sent).
   */
  async create(input: GroupInput, ctx: RequestContext): Promise<GroupView> {
    const key = groupCreateKey(input.displayName);
    return withResource(this.locks, this.store, key, ctx.deadlineAt, async () => {
      const settled = await this.creates.settleLocked(key, ctx);
      if (settled && settled.externalId === (input.externalId ?? null)) {
        const adopted = await this.adoptSettled(settled, input, ctx);
        if (adopted) return adopted;
      }
      return this.createLocked(input, key, ctx);
    });
  }

  /**
   * The retried POST of a create that was cut off and has just been settled: the group it made,
   * once the members it asked for (a member change the settle left) are in it; null if not.
   */
  private async adoptSettled(
    settled: GroupRecord,
    input: GroupInput,
    ctx: RequestContext,
  ): Promise<GroupView | null> {
    const upstream = await getUpstreamGroup(this.api, settled.scimId, ctx);
    if (!upstream) return null;
    if (input.members?.length) {
      // withGroup settles the member change the settle left before reading the members.
      const now = await this.withGroup(
        settled.scimId,
        ctx,
        async () => new Set(await this.store.membersOfGroup(settled.scimId)),
      );
      if (!input.members.every((id) => now.has(id))) return null;
    }
    ctx.origin.subject = { type: 'Group', id: settled.scimId, name: settled.displayName };
    return { scimId: settled.scimId, record: settled, upstream };
  }

  private async createLocked(input: GroupInput, key: string, ctx: RequestContext): Promise<GroupView> {
    const opts = callOptions(ctx);
    // Members are checked first: a bad member id must not leave a half-created group behind.
    const additions = input.members?.length
      ? await this.memberOps.resolve([...new Set(input.members)], 'add', ctx)
      : [];
    const taken = await this.checkNameFree(input.displayName, undefined, ctx);
    let groupName = groupNameFor(input.displayName);
    // Nothing usable left of the displayName (e.g. only CJK characters): 'group' alone would collide.
    if (taken.has(groupName.toLowerCase()) || groupName === FALLBACK_GROUP_NAME)
      groupName = withSuffix(groupName);
    // Before CreateGroup: the intent keeps what only the store holds (externalId), and the trail
    // names the group (by its displayName; its id is CloudIdentity's) even if the process dies here.
    const intentId = randomUUID();
    const payload: GroupCreatePayload = {
      displayName: input.displayName,
      externalId: input.externalId,
      groupName,
      members: additions.filter((m) => m.kind === 'upstream').map((m) => m.scimId),
    };
    await new UnitOfWork(this.store, ctx, { type: 'Group', id: null, name: input.displayName })
      .write({
        op: 'putIntent',
        intent: { id: intentId, resource: key, kind: IntentKind.groupCreate, payload },
      })
      .note(`create started: GroupName ${groupName} (intent ${intentId})`)
      .commit('started');
    const clearIntent: StoreWrite = { op: 'clearIntent', id: intentId };
    /** A create that certainly made nothing leaves nothing to settle. */
    const dropIntent = () =>
      commitProgress(this.store, [clearIntent]).catch((err) =>
        ctx.log.warn({ err, intent: intentId }, 'could not clear the intent of a failed group create'),
      );
    let upstream: CloudIdentityGroup | undefined;
    let mayHaveMade = false;
    for (let attempt = 1; !upstream; attempt++) {
      try {
        upstream = await this.api.createGroup(
          { GroupName: groupName, JoinType: 'Manual', DisplayName: input.displayName },
          opts,
        );
      } catch (e) {
        // Failed, but possibly created (answer lost, then the retries failed): without this, the group
        // would stay in CloudIdentity without its record (externalId) and block its name.
        if (mayHaveCommitted(e)) {
          mayHaveMade = true;
          upstream = await this.createdDespite(groupName, input.displayName, ctx).catch(() => undefined);
          if (upstream) continue;
        }
        // The name was taken meanwhile (or is held by a group QueryString did not show): new suffix.
        if (!isCode(e, UpstreamCode.GroupNameAlreadyExists) || attempt >= 3) {
          // Possibly made: the intent stays, for the retried POST, a match or the reconciler.
          if (!mayHaveMade) await dropIntent();
          throw e;
        }
        groupName = withSuffix(groupNameFor(input.displayName));
      }
    }
    const newRecord = {
      scimId: upstream.GroupId,
      groupName: upstream.GroupName,
      displayName: input.displayName,
      externalId: input.externalId,
      attributes: {},
    };
    const subject: AuditSubject = { type: 'Group', id: upstream.GroupId, name: input.displayName };
    ctx.origin.subject = subject;
    const groupId = upstream.GroupId;
    let committed: CommitResult;
    try {
      if (additions.length === 0) {
        committed = await new UnitOfWork(this.store, ctx, subject)
          .write({ op: 'insertGroup', record: newRecord }, clearIntent)
          .group(null, newRecord)
          .commit('created');
      } else {
        // The record comes with the members' intent; the members under the group's key like every
        // member change, so the reconciler never replays them meanwhile.
        committed = await withResource(this.locks, this.store, groupKey(groupId), ctx.deadlineAt, () =>
          this.memberOps.change(
            groupId,
            [],
            additions,
            ctx,
            { subject, outcome: 'created', first: [{ op: 'insertGroup', record: newRecord }, clearIntent] },
            (unit) => {
              unit.group(null, newRecord);
            },
          ),
        );
      }
    } catch (e) {
      if (!(e instanceof StoreConflictError)) throw e;
      // Another request created a group of this name (any case) in the meantime: undo ours.
      await this.api
        .deleteGroup({ GroupId: groupId }, opts)
        .catch((cleanup) =>
          ctx.log.warn({ err: cleanup, groupId }, 'could not delete the group of a failed create'),
        );
      await dropIntent();
      throw conflict(`displayName '${input.displayName}' is already taken`);
    }
    const record = committed.groups.get(groupId);
    return { scimId: groupId, record: record && record !== 'deleted' ? record : null, upstream };
  }

  /** The group a failed but possibly committed CreateGroup made: our GroupName and DisplayName, no record. */
  private async createdDespite(
    groupName: string,
    displayName: string,
    ctx: RequestContext,
  ): Promise<CloudIdentityGroup | undefined> {
    const page = await this.api.listGroups(
      { QueryString: groupName, PageNumber: 1, PageSize: UPSTREAM_PAGE },
      callOptions(ctx),
    );
    const found = page.Groups.find(
      (g) => g.GroupName.toLowerCase() === groupName.toLowerCase() && g.DisplayName === displayName,
    );
    if (!found || (await this.store.getGroup(found.GroupId))) return undefined;
    ctx.log.info({ groupId: found.GroupId }, 'CreateGroup failed after it had created the group: kept');
    return found;
  }

  /**
   * 409 when another group (not `selfId`) shows this displayName, in the store or upstream.
   * Returns the GroupNames (lower case) the upstream lookup saw, to pick a free one.
   */
  private async checkNameFree(
    displayName: string,
    selfId: string | undefined,
    ctx: RequestContext,
  ): Promise<Set<string>> {
    const [record, upstream] = await Promise.all([
      this.store.findGroupByDisplayName(displayName),
      this.reader.groupsNamed(displayName, ctx),
    ]);
    if (record && record.scimId !== selfId) {
      // A record whose group was deleted in the console does not hold the name.
      const alive =
        upstream.seen.has(record.scimId) || (await getUpstreamGroup(this.api, record.scimId, ctx)) !== null;
      if (alive) throw conflict(`displayName '${displayName}' is already taken`);
      await this.reader.forgetStale(record, ctx);
    }
    if (upstream.exact.some((g) => g.GroupId !== selfId)) {
      throw conflict(`displayName '${displayName}' is already taken by a group in CloudIdentity`);
    }
    return new Set(upstream.all.map((g) => g.GroupName.toLowerCase()));
  }

  /** PUT: displayName, externalId and (when sent) the whole member list, as a diff. */
  async replace(
    groupId: string,
    input: GroupInput,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<GroupView> {
    return this.patch(
      groupId,
      {
        displayName: input.displayName,
        externalId: input.externalId,
        members: input.members ? [{ kind: 'replace', ids: input.members }] : [],
      },
      ifMatch,
      ctx,
    );
  }

  /**
   * PATCH (and PUT): member changes become exactly the Add/Remove calls needed; displayName and
   * externalId are written only when they change.
   */
  patch(
    groupId: string,
    plan: GroupPatch,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<GroupView> {
    // Under the group's key: If-Match is compared with the group as it is now, before any change.
    return this.withGroup(groupId, ctx, async () =>
      this.patchHeld(await this.reader.get(groupId, ctx), plan, ifMatch, ctx),
    );
  }

  private async patchHeld(
    view: GroupView,
    plan: GroupPatch,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<GroupView> {
    if (ifMatch !== undefined && !etagMatches(ifMatch, groupVersion(view))) {
      throw preconditionFailed(
        `If-Match ${ifMatch} does not match the current version ${groupVersion(view)}`,
      );
    }
    const groupId = view.scimId;
    const { adds, removes } = await this.memberOps.memberDelta(groupId, plan, ctx);
    // Translate and check every member before the first change.
    const [toAdd, toRemove] = await Promise.all([
      this.memberOps.resolve(adds, 'add', ctx),
      this.memberOps.resolve(
        removes.filter((r) => typeof r === 'string'),
        'remove',
        ctx,
      ),
    ]);
    toRemove.push(...removes.filter((r): r is Resolved => typeof r !== 'string'));

    const current = displayNameOf(view.upstream);
    const rename = plan.displayName !== undefined && plan.displayName !== current;
    if (rename && plan.displayName!.toLowerCase() !== current.toLowerCase()) {
      await this.checkNameFree(plan.displayName!, groupId, ctx);
    }
    const displayName = rename ? plan.displayName! : current;
    const externalId = plan.externalId !== undefined ? plan.externalId : (view.record?.externalId ?? null);
    // The record is written only for a change it holds; a group from outside the bridge gets one then.
    const recordChanges = rename || externalId !== (view.record?.externalId ?? null);

    const subject: AuditSubject = { type: 'Group', id: groupId, name: displayName };
    ctx.origin.subject = subject;
    const changes = { displayName, externalId };
    const after = view.record
      ? { ...view.record, ...changes }
      : { groupName: view.upstream.GroupName, attributes: {}, ...changes };
    const before = view.record ?? {
      groupName: view.upstream.GroupName,
      displayName: current,
      externalId: null,
      attributes: {},
    };
    // The record is written only for a change it holds (a group from outside the bridge gets one
    // then), and for a member change (meta.version changes with the member list).
    const recordWrite = (): StoreWrite[] => {
      if (!view.record) {
        if (!recordChanges) return [];
        return [
          {
            op: 'insertGroup',
            record: { scimId: groupId, groupName: view.upstream.GroupName, attributes: {}, ...changes },
          },
        ];
      }
      return [
        {
          op: 'updateGroup',
          scimId: groupId,
          changes: recordChanges ? changes : {},
          expectedVersion: ifMatch !== undefined ? view.record.version : undefined,
        },
      ];
    };
    let upstream = view.upstream;
    const renameUpstream = async () => {
      if (!rename) return;
      await this.api.updateGroup({ GroupId: groupId, DisplayName: displayName }, callOptions(ctx));
      upstream = { ...upstream, DisplayName: displayName };
    };
    let committed: CommitResult;
    try {
      if (toAdd.length === 0 && toRemove.length === 0) {
        await renameUpstream();
        const unit = new UnitOfWork(this.store, ctx, subject);
        if (recordChanges) unit.write(...recordWrite()).group(before, after);
        committed = await unit.commit('changed');
      } else {
        committed = await this.memberOps.change(
          groupId,
          toRemove,
          toAdd,
          ctx,
          { subject, outcome: 'changed' },
          async (unit) => {
            await renameUpstream();
            unit.write(...recordWrite()).group(before, after);
          },
        );
      }
    } catch (e) {
      if (rename && (e instanceof StoreConflictError || e instanceof StoreStaleError)) {
        // Keep CloudIdentity as it was: the name belongs to another group, or the record changed.
        await this.api
          .updateGroup({ GroupId: groupId, DisplayName: current }, callOptions(ctx))
          .catch((err) => ctx.log.warn({ err, groupId }, 'could not undo a refused rename'));
      }
      if (e instanceof StoreConflictError) throw conflict(`displayName '${displayName}' is already taken`);
      if (e instanceof StoreStaleError)
        throw preconditionFailed(
          'the group was changed by another request meanwhile; read it again and retry',
        );
      throw e;
    }
    const written = committed.groups.get(groupId);
    const record = written && written !== 'deleted' ? written : view.record;
    return { scimId: groupId, record, upstream };
  }

  /**
   * DeleteGroup; when CloudIdentity refuses because the group still has members, removes them
   * (all pages) and tries again. Then the store record and its membership mirror go.
   */
  delete(scimId: string, ifMatch: string | undefined, ctx: RequestContext): Promise<void> {
    return this.withGroup(scimId, ctx, () => this.deleteHeld(scimId, ifMatch, ctx));
  }

  private async deleteHeld(scimId: string, ifMatch: string | undefined, ctx: RequestContext): Promise<void> {
    let name: string | null = null;
    if (ifMatch !== undefined) {
      const view = await this.reader.get(scimId, ctx);
      if (!etagMatches(ifMatch, groupVersion(view))) {
        throw preconditionFailed(
          `If-Match ${ifMatch} does not match the current version ${groupVersion(view)}`,
        );
      }
      name = displayNameOf(view.upstream);
    } else {
      name = (await this.store.getGroup(scimId))?.displayName ?? null;
    }
    const subject: AuditSubject = { type: 'Group', id: scimId, name };
    ctx.origin.subject = subject;
    await this.intents.run(
      groupKey(scimId),
      IntentKind.groupDelete,
      { groupId: scimId },
      ctx,
      { subject, outcome: 'deleted' },
      (unit) => this.deleteUpstreamAndRecord(scimId, ctx, unit),
    );
  }

  /**
   * DeleteGroup (members removed first when CloudIdentity refuses), then (in the unit's commit) the
   * record and its mirror. A group already gone upstream: its record goes at once, and a 404.
   */
  private async deleteUpstreamAndRecord(
    scimId: string,
    ctx: RequestContext,
    unit: UnitOfWork,
  ): Promise<void> {
    const opts = callOptions(ctx);
    const record = await this.store.getGroup(scimId);
    unit.subject.name ??= record?.displayName ?? null;
    const removed: AuditMember[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.deleteGroup({ GroupId: scimId }, opts);
        break;
      } catch (e) {
        if (isCode(e, UpstreamCode.UserGroupNotFound)) {
          await commitProgress(this.store, [{ op: 'deleteGroup', scimId }]);
          throw notFound(`Group ${scimId} not found`);
        }
        if (!isCode(e, UpstreamCode.UserGroupDeletionConflict) || attempt >= 3) throw e;
      }
      const members = await this.memberOps.upstreamMembers(scimId, ctx);
      ctx.log.info({ groupId: scimId, members: members.length }, 'removing members before deleting a group');
      const mapped = await this.store.getUsersByUpstreamIds(members.map((m) => m.UserId));
      await mapLimit(members, this.parallelism, async (m) => {
        try {
          await this.api.removeUserFromGroup({ GroupId: scimId, UserId: m.UserId }, opts);
        } catch (e) {
          if (!isCode(e, UpstreamCode.UserNotInGroup) && !isCode(e, UpstreamCode.UserNotFound)) throw e;
        }
        removed.push({ id: mapped.get(m.UserId)?.scimId ?? m.UserId, userName: m.UserName });
      });
    }
    unit.write({ op: 'deleteGroup', scimId }).members([], removed);
    if (record) unit.group(record, null);
    else unit.changes.deleted = true;
  }
}
