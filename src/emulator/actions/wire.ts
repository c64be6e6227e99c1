import type {
  CloudIdentityGroup,
  CloudIdentityGroupMember,
  CloudIdentityUser,
} from '../../volcengine/types.js';
import type { OrderedTable } from '../ordered-table.js';
import type { GroupRecord, MemberRecord, UserRecord } from '../state.js';
import type { Page } from './params.js';

// Every documented field is always present; unset optional fields are '' (a documented choice).

/** CreateUser's Result has no IdentityType; GetUser, ListUsers and ListGroupMembers include it. */
export function userToWire(u: UserRecord, withIdentityType: boolean): CloudIdentityUser {
  const out: CloudIdentityUser = {
    UserId: u.UserId,
    UserName: u.UserName,
    DisplayName: u.DisplayName,
    Description: u.Description,
    Email: u.Email,
    Phone: u.Phone,
    Source: u.Source,
    CreatedTime: u.CreatedTime,
    UpdatedTime: u.UpdatedTime,
  };
  if (withIdentityType) out.IdentityType = u.IdentityType;
  return out;
}

export function groupToWire(g: GroupRecord): CloudIdentityGroup {
  return {
    GroupId: g.GroupId,
    GroupName: g.GroupName,
    DisplayName: g.DisplayName,
    Description: g.Description,
    JoinType: g.JoinType,
    Source: g.Source,
    CreatedTime: g.CreatedTime,
    UpdatedTime: g.UpdatedTime,
  };
}

export function memberToWire(m: MemberRecord): CloudIdentityGroupMember {
  const u = m.user;
  return {
    UserId: u.UserId,
    UserName: u.UserName,
    DisplayName: u.DisplayName,
    Description: u.Description,
    Email: u.Email,
    Phone: u.Phone,
    Source: u.Source,
    IdentityType: u.IdentityType,
    JoinTime: m.JoinTime,
  };
}

/**
 * One page of a table in insertion order. Unfiltered: positional, O(pageSize). Filtered: one scan
 * that counts every match but keeps only the requested window.
 */
export function pageOf<V>(
  table: OrderedTable<string, V>,
  page: Page,
  match?: (v: V) => boolean,
): { total: number; items: V[] } {
  if (!match) return { total: table.size, items: table.page(page.offset, page.pageSize) };
  let total = 0;
  const items: V[] = [];
  const end = page.offset + page.pageSize;
  for (const v of table.values()) {
    if (!match(v)) continue;
    if (total >= page.offset && total < end) items.push(v);
    total++;
  }
  return { total, items };
}
