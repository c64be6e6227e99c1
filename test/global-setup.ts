import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { PGLITE_TEMPLATE_ENV, writePGliteTemplate } from './store/pglite-template.js';

// initdb in WASM takes seconds; the legacy-import test (the one user of PGlite left) starts its
// PGlite DATA_DIR from this dump instead.
export default async function setup(): Promise<void> {
  const dir = join(process.cwd(), 'node_modules', '.cache', 'volc-scim-bridge');
  const file = join(dir, `pglite-template-${process.versions.node}.tar`);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    await writePGliteTemplate(`${file}.tmp`);
    await rename(`${file}.tmp`, file);
  }
  process.env[PGLITE_TEMPLATE_ENV] = file;
}
