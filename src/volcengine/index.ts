export type { ActionName } from './actions.js';
export {
  API_VERSION,
  type ClientObserver,
  CloudIdentityClient,
  type CloudIdentityClientOptions,
  DEFAULT_ENDPOINT,
  DEFAULT_REGION,
  SERVICE_NAME,
} from './client.js';
export { type ParsedResponse, parseResponse, parseRetryAfter } from './envelope.js';
export * from './errors.js';
export {
  canonicalQueryString,
  canonicalUri,
  DEFAULT_SIGNED_HEADERS,
  deriveSigningKey,
  formatXDate,
  normalizeHost,
  percentEncode,
  SIGNING_ALGORITHM,
  type SignRequestInput,
  type SignRequestResult,
  sha256Hex,
  signRequest,
} from './signer.js';
export type * from './types.js';
