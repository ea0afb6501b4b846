// Writes crds/*.yaml from the kind definitions; with --check, fails when crds/ is out of date.
import { readdirSync, readFileSync, writeFileSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crdFileName, crdYaml } from './crd.ts';
import { ALL_KINDS } from './index.ts';

const dir = join(import.meta.dirname, '..', '..', 'crds');
const check = process.argv.includes('--check');
const wanted = new Map(ALL_KINDS.map((def) => [crdFileName(def), crdYaml(def)]));
const present = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
const stale = [
  ...[...wanted]
    .filter(([file, yaml]) => !existsSync(join(dir, file)) || readFileSync(join(dir, file), 'utf8') !== yaml)
    .map(([f]) => f),
  ...present.filter((f) => !wanted.has(f)),
];

if (check) {
  if (stale.length > 0) {
    console.error(`error: crds/ is out of date (${stale.join(', ')}); run make generate and commit the result`);
    process.exit(1);
  }
  console.log(`crds/ is up to date (${wanted.size} CRDs)`);
} else {
  mkdirSync(dir, { recursive: true });
  for (const f of present) if (!wanted.has(f)) unlinkSync(join(dir, f));
  for (const [file, yaml] of wanted) writeFileSync(join(dir, file), yaml);
  console.log(`wrote ${wanted.size} CRDs to crds/`);
}
