// The bare proxy's mapping: a SCIM User body to CloudIdentity's CreateUser fields, and a
// CloudIdentity user back to a SCIM User. Only what the mapping itself needs is checked.
import type { CloudIdentityUser, CreateUserInput } from '../../src/volcengine/types.js';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The primary element's value, else the first element's. */
function primaryValue(values: unknown): string | undefined {
  if (!Array.isArray(values)) return undefined;
  const items = values.filter(isObject);
  return text((items.find((v) => v.primary === true) ?? items[0])?.value);
}

/** CreateUser's fields for a SCIM User body; a string saying what is wrong when it cannot be mapped. */
export function createUserInput(body: unknown): CreateUserInput | string {
  if (!isObject(body)) return 'the body must be a JSON object';
  const userName = text(body.userName);
  if (!userName) return 'userName is required';
  const name = isObject(body.name) ? body.name : {};
  const displayName = text(body.displayName) ?? text(name.formatted) ?? userName;
  const email = primaryValue(body.emails);
  const phone = primaryValue(body.phoneNumbers);
  return {
    UserName: userName,
    DisplayName: displayName,
    ...(email ? { Email: email } : {}),
    ...(phone ? { Phone: phone } : {}),
  };
}

/**
 * A SCIM User for a CloudIdentity user. Its SCIM id is its UserId for the bare proxy, which keeps
 * nothing; the durable floor gives its own record's id.
 */
export function scimUser(user: CloudIdentityUser, baseUrl: string, id = user.UserId): Json {
  return {
    schemas: [USER_SCHEMA],
    id,
    userName: user.UserName,
    ...(user.DisplayName ? { displayName: user.DisplayName } : {}),
    ...(user.Email ? { emails: [{ value: user.Email, type: 'work', primary: true }] } : {}),
    ...(user.Phone ? { phoneNumbers: [{ value: user.Phone, type: 'work', primary: true }] } : {}),
    active: true,
    meta: {
      resourceType: 'User',
      created: user.CreatedTime,
      lastModified: user.UpdatedTime,
      location: `${baseUrl}/scim/v2/Users/${id}`,
    },
  };
}
