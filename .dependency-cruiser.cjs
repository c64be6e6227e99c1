// Import rules for src/, checked by `npm run lint` (depcruise). The layers, top down; a module imports
// only from its own layer or the layers below, and no two folders import each other:
//
//   HTTP surface   app.ts, bridge.ts and the entry points; admin/ (console and admin API);
//                  scim-http/ (SCIM routes, content negotiation, projection of responses, SCIM error
//                  rendering, bearer auth, discovery, root search, request audit)
//   ops            ops/: request plumbing every surface shares (request context, access log, metrics,
//                  rate limits, readiness, probe routes); what it needs of SCIM, app.ts passes in
//   domain         directory/ (users, groups, intents, reconciler) above audit/ (audit records);
//                  beside ops, importing none of it (the reconciler reports through an interface)
//   SCIM model     scim-model/: what a filter, a schema, a PATCH and a resource body are, and the SCIM
//                  error message; imports nothing of the bridge, only scimmy
//   bottom         volcengine/ (the CloudIdentity client), store/ (both may log through logger.ts);
//                  config.ts and logger.ts, which import nothing of the bridge
//
// The emulator (src/emulator/) stands apart: the bridge starts it through its public entry only, and it
// borrows nothing from the bridge but type declarations, so it can disagree with the client.
//
// Violations present when a rule was written are listed in .dependency-cruiser-known-violations.json
// (`npm run lint:deps:baseline` rewrites it) and tolerated by `--ignore-known`; any new one fails lint.
// The list is empty; keep it so.

/** Modules that serve HTTP or start the process: nothing below them may import these. */
const HTTP_SURFACE = [
  '^src/(app|bridge|main|check-config|store-cli)[.]ts$',
  '^src/admin/',
  '^src/scim-http/',
];

/** Request plumbing shared by the surfaces. */
const OPS = '^src/ops/';

/** The domain: the directory and, below it, the audit trail. */
const DOMAIN = '^src/(directory|audit)/';

/** Express itself, whether imported for values or for its types. */
const EXPRESS = '^node_modules/(express|@types/express|@types/express-serve-static-core)/';

/** The SCIM protocol model: what a filter, a schema, a PATCH and a resource body are. */
const SCIM_MODEL = '^src/scim-model/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means two modules are one; merge them or move what both need below both.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      severity: 'error',
      comment: 'Folders are layers too: two folders that import each other are one layer in two places.',
      scope: 'folder',
      // Every folder under src/. The baseline (--ignore-known) does not cover folder-scope rules, so a
      // folder cycle cannot be tolerated: break it (move what both need below both, or pass it in).
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'bottom-imports-nothing-above',
      severity: 'error',
      comment:
        'volcengine/ and store/ sit at the bottom: they know nothing of SCIM, the domain, ops or HTTP.',
      from: { path: '^src/(volcengine|store)/' },
      to: {
        path: [
          '^src/(scim-model|scim-http|directory|audit|admin|ops|emulator)/',
          '^src/[^/]+[.]ts$',
          EXPRESS,
        ],
        pathNot: ['^src/logger[.]ts$'],
      },
    },
    {
      name: 'domain-not-http',
      severity: 'error',
      comment:
        'directory/ and audit/ are the domain: they take plain inputs and throw their own errors; ' +
        'routes, rendering, request plumbing (ops/) and Express live above them.',
      from: { path: DOMAIN },
      to: { path: [...HTTP_SURFACE, OPS, EXPRESS] },
    },
    {
      name: 'audit-below-directory',
      severity: 'error',
      comment:
        'audit/ builds and keeps audit records from what an operation states; the directory writes ' +
        'them, so audit/ knows nothing of the directory.',
      from: { path: '^src/audit/' },
      to: { path: '^src/directory/' },
    },
    {
      name: 'ops-below-surfaces',
      severity: 'error',
      comment:
        'ops/ serves every surface: it imports neither a surface (app, admin/, scim-http/) nor the ' +
        'domain; what it needs of them is passed in.',
      from: { path: OPS },
      to: { path: [...HTTP_SURFACE, DOMAIN] },
    },
    {
      name: 'scim-model-stands-alone',
      severity: 'error',
      comment:
        'The SCIM protocol model parses and checks SCIM documents with scimmy; it imports nothing else ' +
        'of the bridge (no domain, store, client, ops or HTTP surface) and not Express.',
      from: { path: SCIM_MODEL },
      to: { path: ['^src/', EXPRESS], pathNot: [SCIM_MODEL] },
    },
    {
      name: 'bridge-not-emulator-internals',
      severity: 'error',
      comment: 'The bridge starts the in-process emulator through bridge.ts and its public entry only.',
      from: { path: '^src/', pathNot: ['^src/emulator/', '^src/bridge[.]ts$'] },
      to: { path: '^src/emulator/' },
    },
    {
      name: 'bridge-emulator-entry-only',
      severity: 'error',
      comment: 'bridge.ts may import src/emulator/index.ts and nothing else of the emulator.',
      from: { path: '^src/bridge[.]ts$' },
      to: { path: '^src/emulator/', pathNot: '^src/emulator/index[.]ts$' },
    },
    {
      name: 'emulator-independent',
      severity: 'error',
      comment:
        'The emulator shares no code with the bridge: only the CloudIdentity type declarations ' +
        '(volcengine/types.ts) and the signing test vectors.',
      from: { path: '^src/emulator/' },
      to: {
        path: '^(src|test)/',
        pathNot: ['^src/emulator/', '^src/volcengine/types[.]ts$', '^test/fixtures/signing-vectors[.]json$'],
      },
    },
    {
      name: 'emulator-types-only',
      severity: 'error',
      comment: 'The emulator imports volcengine/types.ts with `import type` only.',
      from: { path: '^src/emulator/' },
      to: { path: '^src/volcengine/types[.]ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment:
        'Production code (src/) imports only dependencies; devDependencies are not installed in the image.',
      from: { path: '^src/' },
      to: {
        dependencyTypes: ['npm-dev'],
        dependencyTypesNot: ['type-only'],
        pathNot: ['^node_modules/@types/'],
      },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
