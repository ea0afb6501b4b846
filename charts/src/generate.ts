// Writes charts/tide (Chart.yaml, values.yaml, values.schema.json, templates/) from charts/src and
// crds/; with --check, fails when the chart differs from a fresh generation. charts/tide/files/ is
// written by hand (monitoring rules and dashboard) and left alone.
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Document, isMap, isScalar, parseAllDocuments, stringify } from 'yaml';
import { templateFiles } from './chart.ts';
import { guard, toTemplate } from './template.ts';
import { schemaJson, valuesSchema } from './values.ts';

const root = join(import.meta.dirname, '..', '..');
const chartDir = join(root, 'charts', 'tide');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

function crdDocuments(): Record<string, unknown>[] {
  const dir = join(root, 'crds');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS()));
}

/** The defaults a schema declares, objects assembled from their properties' defaults. */
function defaults(schema: TSchema): unknown {
  if (schema.default !== undefined) return structuredClone(schema.default);
  if (schema.type === 'object' && schema.properties) {
    return Object.fromEntries(
      Object.entries(schema.properties as Record<string, TSchema>).map(([k, s]) => [k, defaults(s)]),
    );
  }
  return undefined;
}

/** Comment lines of at most `width` characters (a word longer than that gets its own line). */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + 1 + word.length <= width) lines[last] += ` ${word}`;
    else lines.push(` ${word}`);
  }
  return lines.join('\n');
}

/** values.yaml: the defaults, each key preceded by its description. */
function valuesYaml(): string {
  const doc = new Document(defaults(valuesSchema));
  const describe = (node: unknown, schema: TSchema) => {
    if (!isMap(node) || !schema.properties) return;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const s = (schema.properties as Record<string, TSchema>)[key];
      if (!s) continue;
      if (s.description && isScalar(pair.key)) pair.key.commentBefore = wrap(s.description, 98);
      describe(pair.value, s);
    }
  };
  describe(doc.contents, valuesSchema);
  const header = '# Values of the Tide chart; values.schema.json refuses anything else. Generated: make generate.\n';
  return header + doc.toString({ lineWidth: 0 });
}

function chartYaml(): string {
  return stringify(
    {
      apiVersion: 'v2',
      name: 'tide',
      description: 'Tide: GitOps controllers for Kubernetes implementing the Flux v2 APIs',
      type: 'application',
      version,
      appVersion: version,
      keywords: ['gitops', 'flux', 'kustomize', 'helm'],
    },
    { lineWidth: 0 },
  );
}

/** Every file of the chart this generator owns, by path under charts/tide. */
function chartFiles(): Map<string, string> {
  const files = new Map<string, string>([
    ['Chart.yaml', chartYaml()],
    ['values.yaml', valuesYaml()],
    ['values.schema.json', schemaJson()],
  ]);
  for (const t of templateFiles(crdDocuments())) {
    const yaml = t.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
    const text = toTemplate(yaml);
    files.set(join('templates', t.name), t.when ? guard(t.when, text) : text);
  }
  return files;
}

function main(): void {
  const check = process.argv.includes('--check');
  const wanted = chartFiles();
  const templates = join(chartDir, 'templates');
  const present = existsSync(templates) ? readdirSync(templates).map((f) => join('templates', f)) : [];
  const stale = [
    ...[...wanted]
      .filter(([f, text]) => !existsSync(join(chartDir, f)) || readFileSync(join(chartDir, f), 'utf8') !== text)
      .map(([f]) => f),
    ...present.filter((f) => !wanted.has(f)),
  ];
  if (check) {
    if (stale.length > 0) {
      console.error(`error: charts/tide is out of date (${stale.join(', ')}); run make generate and commit the result`);
      process.exit(1);
    }
    console.log(`charts/tide is up to date (${wanted.size} files)`);
    return;
  }
  mkdirSync(templates, { recursive: true });
  for (const f of present) if (!wanted.has(f)) unlinkSync(join(chartDir, f));
  for (const [f, text] of wanted) writeFileSync(join(chartDir, f), text);
  console.log(`wrote ${wanted.size} files to charts/tide`);
}

main();
