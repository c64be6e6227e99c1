import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGLITE_TEMPLATE_ENV, writePGliteTemplate } from '../src/store/pglite-driver.js';

// initdb in WASM takes seconds; every test file's in-memory store starts from this one dump instead.
export default async function setup(): Promise<void> {
  const dir = join(process.cwd(), 'node_modules', '.cache', 'volc-scim-bridge');
  const file = join(dir, `pglite-template-${process.versions.node}.tar`);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    await writePGliteTemplate(`${file}.tmp`);
    const { rename } = await import('node:fs/promises');
    await rename(`${file}.tmp`, file);
  }
  process.env[PGLITE_TEMPLATE_ENV] = file;
}
