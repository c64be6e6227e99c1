import { expect } from 'vitest';
import { ScimError } from '../../src/scim-model/scim-error.js';

// Schema URNs and error catchers shared by the scim-model tests.

export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const VOLC = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';
export const MANAGER = `${ENTERPRISE}:manager`;
export const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export function scimError(fn: () => unknown): ScimError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScimError);
    return e as ScimError;
  }
  throw new Error('no error thrown');
}
export async function scimErrorAsync(fn: () => Promise<unknown>): Promise<ScimError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScimError);
    return e as ScimError;
  }
  throw new Error('no error thrown');
}
