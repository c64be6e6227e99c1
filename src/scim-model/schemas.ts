import SCIMMY from 'scimmy';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
/** Carries what CloudIdentity holds beyond core SCIM: Description, and read-only Source/IdentityType. */
export const VOLC_USER_SCHEMA = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';
export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** CloudIdentity's documented limits (characters). Checked before any upstream call. */
export const LIMITS = {
  userName: 54,
  displayName: 64,
  description: 255,
  email: 128,
  phone: 20,
  groupDisplayName: 64,
  groupDescription: 128,
} as const;

let configured = false;

/**
 * scimmy's schema definitions are process-global; configure them once. The relaxations here are
 * deliberate: Entra and Okta send `"Work"` as an email type and free-text role types, which
 * scimmy's case-sensitive canonical-value check would reject although RFC 7643 only says SHOULD.
 */
export function configureScimmy(): void {
  if (configured) return;
  configured = true;
  // scimmy's typings want an instance; the runtime takes the class (as its docs show).
  SCIMMY.Schemas.User.extend(SCIMMY.Schemas.EnterpriseUser as never, false);
  relaxCanonicalValues(SCIMMY.Schemas.User.definition);
  // Clients (the Microsoft validator) send free text in profileUrl; keep it as an opaque string.
  // Attributes are frozen (their type cannot change), so the reference attribute is swapped for a
  // string one in the same position.
  const definition = SCIMMY.Schemas.User.definition as unknown as { attributes: unknown[] };
  const index = definition.attributes.indexOf(SCIMMY.Schemas.User.definition.attribute('profileUrl'));
  if (index >= 0) {
    definition.attributes.splice(
      index,
      1,
      new SCIMMY.Types.Attribute('string', 'profileUrl', {
        description:
          "A URI that is a uniform resource locator and that points to a location representing the user's online profile (kept as sent).",
      }),
    );
  }
}

type AttributeLike = {
  name?: string;
  config?: { canonicalValues?: unknown };
  subAttributes?: AttributeLike[];
};

function relaxCanonicalValues(definition: { attributes: AttributeLike[] }): void {
  const walk = (attrs: AttributeLike[] | undefined) => {
    for (const attr of attrs ?? []) {
      if (attr.config && Array.isArray(attr.config.canonicalValues)) attr.config.canonicalValues = false;
      walk(attr.subAttributes);
      const nested = attr as unknown as { attributes?: AttributeLike[] };
      if (Array.isArray(nested.attributes)) walk(nested.attributes);
    }
  };
  walk(definition.attributes);
}

/** The Volcengine extension's /Schemas description (scimmy only accepts urn:ietf namespaces). */
export function volcUserSchemaDescription(): Record<string, unknown> {
  const str = (name: string, description: string, mutability: string) => ({
    name,
    type: 'string',
    multiValued: false,
    description,
    required: false,
    caseExact: false,
    mutability,
    returned: 'default',
    uniqueness: 'none',
  });
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: VOLC_USER_SCHEMA,
    name: 'CloudIdentityUser',
    description: 'Volcengine CloudIdentity user attributes',
    attributes: [
      str('description', `CloudIdentity Description (at most ${LIMITS.description} characters)`, 'readWrite'),
      str('source', 'CloudIdentity Source: Manual or Sync', 'readOnly'),
      str('identityType', 'CloudIdentity IdentityType', 'readOnly'),
    ],
    meta: { resourceType: 'Schema', location: `/Schemas/${VOLC_USER_SCHEMA}` },
  };
}
