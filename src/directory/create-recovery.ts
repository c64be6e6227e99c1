// One rule for create recovery ("never adopt what you cannot prove is yours", README "Consistency"), used by
// every path that can lose a CreateUser answer: a create or a reactivation whose CreateUser failed
// after it may have committed (answer lost, retries answered UserNameAlreadyExists), a retried or
// taken-over pending create, and a read that finds a pending create's account.
//
// An existing CloudIdentity account of the wanted userName is this operation's own only when:
// - an attempt of the operation may have created it (a CreateUser answer lost, or an earlier run of
//   the operation): a first CreateUser plainly answered UserNameAlreadyExists met someone else's,
// - its UserName is exactly the wanted one (any case: CloudIdentity's UserName match may be fuzzy),
// - no other record maps it, and
// - CloudIdentity says it was created (CreatedTime) no earlier than the moment the operation's pending
//   record or intent was committed, which happened before the operation's first CreateUser: an
//   account older than that was made by someone else (the console, another tool) and is a namesake.
// CreatedTime has whole seconds: the second in which the record was committed counts.
import type { BridgeStore } from '../store/types.js';
import type { CloudIdentityApi, CloudIdentityUser } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { UPSTREAM_PAGE } from './paging.js';

/** Pages of a fuzzy UserName match read at most to find the exact name. */
const MAX_PAGES = 5;

export type CreateRecovery =
  /** The account this operation created: adopt it. */
  | { kind: 'ours'; user: CloudIdentityUser }
  /** No account of that name: the CreateUser did not commit. */
  | { kind: 'absent' }
  /** An account of that name this operation cannot show it created: a uniqueness conflict. */
  | { kind: 'namesake'; user: CloudIdentityUser; mappedTo: string | null };

export interface CreateAttempt {
  userName: string;
  /**
   * Whether an attempt of this operation may have created the account: its CreateUser's answer was
   * lost (or answered after a lost one), or an earlier run of the operation (a replayed intent, a
   * taken-over pending create) may have. When not, an existing account is never ours.
   */
  maybeOurs: boolean;
  /** When the operation's pending record or intent was committed (RFC 3339, store clock). */
  since: string;
  /** The SCIM id of the record the account is for (a record already mapping it is that one). */
  owner: string;
}

/** The account CloudIdentity holds under exactly this userName (any case), or null. */
export async function accountNamed(
  api: CloudIdentityApi,
  userName: string,
  ctx: RequestContext,
): Promise<CloudIdentityUser | null> {
  const wanted = userName.toLowerCase();
  for (let page = 1; page <= MAX_PAGES; page++) {
    const r = await api.listUsers(
      { UserName: userName, PageNumber: page, PageSize: UPSTREAM_PAGE },
      callOptions(ctx),
    );
    const found = r.Users.find((u) => typeof u.UserName === 'string' && u.UserName.toLowerCase() === wanted);
    if (found) return found;
    if (r.Users.length < UPSTREAM_PAGE || page * UPSTREAM_PAGE >= r.Total) return null;
  }
  return null;
}

/** Whether CloudIdentity created `resource` (a user or a group) no earlier than the second of `since`. */
export function createdSince(resource: { CreatedTime?: string }, since: string): boolean {
  const created = Date.parse(resource.CreatedTime ?? '');
  const from = Date.parse(since);
  if (Number.isNaN(created) || Number.isNaN(from)) return false;
  return created >= Math.floor(from / 1000) * 1000;
}

/** The rule: classifies the account of `attempt.userName` (throws when CloudIdentity cannot be read). */
export async function recoverCreate(
  api: CloudIdentityApi,
  store: BridgeStore,
  attempt: CreateAttempt,
  ctx: RequestContext,
): Promise<CreateRecovery> {
  const user = await accountNamed(api, attempt.userName, ctx);
  if (!user) return { kind: 'absent' };
  return classify(store, user, attempt);
}

/** The rule for an account already found by name. */
export async function classify(
  store: BridgeStore,
  user: CloudIdentityUser,
  attempt: CreateAttempt,
): Promise<CreateRecovery> {
  const mapped = (await store.getUsersByUpstreamIds([user.UserId])).get(user.UserId);
  if (mapped) {
    return mapped.scimId === attempt.owner
      ? { kind: 'ours', user }
      : { kind: 'namesake', user, mappedTo: mapped.scimId };
  }
  if (!attempt.maybeOurs || !createdSince(user, attempt.since))
    return { kind: 'namesake', user, mappedTo: null };
  return { kind: 'ours', user };
}

/** The 409 detail naming the account a create or reactivation collided with. */
export function namesakeDetail(userName: string, r: Extract<CreateRecovery, { kind: 'namesake' }>): string {
  const holder = r.mappedTo
    ? `SCIM user ${r.mappedTo}`
    : `a CloudIdentity account (UserId ${r.user.UserId}${r.user.CreatedTime ? `, created ${r.user.CreatedTime}` : ''}) the bridge did not create`;
  return `userName '${userName}' is already taken by ${holder}`;
}
