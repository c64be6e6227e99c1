import type { Router } from 'express';
import type { BridgeStore, GroupRecord, UserRecord } from '../store/types.js';
import { handle } from './audit-routes.js';
import { ParamError, queryParams, textParam } from './params.js';

// GET /admin/api/people?q=: who or what `q` names now, from the store (the bridge's current state,
// not its history): a person by SCIM id or userName, with the groups they belong to; a group by SCIM
// id or displayName, with its members. Both when q names both. Their history is
// /audit?resource=<id>, which includes the group changes that added or removed a person.

/** Members a group answer names (memberCount is always complete). */
export const MEMBERS_LISTED = 200;

interface GroupRef {
  id: string;
  displayName: string | null;
}

function groupRefs(ids: string[], records: Map<string, GroupRecord>): GroupRef[] {
  return ids
    .map((id) => ({ id, displayName: records.get(id)?.displayName ?? null }))
    .sort((a, b) => (a.displayName ?? a.id).localeCompare(b.displayName ?? b.id));
}

async function personView(store: BridgeStore, record: UserRecord) {
  const groupIds = await store.groupsOfUser(record.scimId);
  const records = await store.getGroups([...new Set([...groupIds, ...record.tombstoneGroupIds])]);
  return {
    id: record.scimId,
    userName: record.userName,
    active: record.active,
    state: record.state,
    upstreamUserId: record.upstreamUserId,
    externalId: record.externalId,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    // The membership mirror: what the person's SCIM `groups` answers.
    groups: groupRefs(groupIds, records),
    // Deactivated with DEACTIVATE_ACTION=delete: the groups reactivation restores.
    restoredOnReactivation: groupRefs(record.tombstoneGroupIds, records),
  };
}

async function groupView(store: BridgeStore, record: GroupRecord) {
  const memberIds = await store.membersOfGroup(record.scimId);
  const listed = memberIds.slice(0, MEMBERS_LISTED);
  const users = await store.getUsers(listed);
  const members = listed
    .map((id) => ({ id, userName: users.get(id)?.userName ?? null, active: users.get(id)?.active ?? null }))
    .sort((a, b) => (a.userName ?? a.id).localeCompare(b.userName ?? b.id));
  return {
    id: record.scimId,
    displayName: record.displayName,
    groupName: record.groupName,
    externalId: record.externalId,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    memberCount: memberIds.length,
    members,
  };
}

export function peopleRoutes(store: BridgeStore) {
  return (router: Router) => {
    router.get(
      '/people',
      handle(async (req, res) => {
        const q = textParam('q', queryParams(req, ['q']).q);
        if (q === undefined) throw new ParamError('q (a SCIM id, userName or group displayName) is required');
        const [user, group] = await Promise.all([
          store.getUser(q).then((r) => r ?? store.findUserByUserName(q)),
          store.getGroup(q).then((r) => r ?? store.findGroupByDisplayName(q)),
        ]);
        res.json({
          query: q,
          person: user && (await personView(store, user)),
          group: group && (await groupView(store, group)),
        });
      }),
    );
  };
}
