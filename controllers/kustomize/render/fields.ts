// The Kustomization's own kustomize fields go into the kustomization file at spec.path itself, as
// Flux does, not into an overlay around it: targetNamespace, namePrefix and nameSuffix replace the
// file's own values, patches and components join the file's (so they run before its transformers
// and components' resources get its namespace and prefix), and an image entry replaces the file's
// entry of the same name. An overlay would stack a second prefix and miss those cases.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Document, isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Node } from 'yaml';
import type { ObjectSelector } from '../../api/common.ts';
import { BuildError } from './errors.ts';
import { display, statOrUndefined } from './tree.ts';

export interface KustomizeFields {
  targetNamespace?: string;
  namePrefix?: string;
  nameSuffix?: string;
  patches?: { patch: string; target?: ObjectSelector }[];
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  components?: string[];
  ignoreMissingComponents?: boolean;
}

const SELECTOR_FIELDS = [
  'group',
  'version',
  'kind',
  'namespace',
  'name',
  'annotationSelector',
  'labelSelector',
] as const;

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as Partial<T>;
}

/**
 * The user's file is read with every scalar as a string and written back with those scalars as
 * they were, so `newTag: 1.10` or `0755` reach kustomize unchanged. Values Tide adds are quoted
 * (or block literals), so a namespace like "1234" stays a string.
 */
function quoted(doc: Document, value: unknown): Node {
  const node = doc.createNode(value) as Node;
  visit(node, {
    Scalar(key, scalar) {
      if (key === 'key') return;
      scalar.type = String(scalar.value).includes('\n') ? 'BLOCK_LITERAL' : 'QUOTE_DOUBLE';
    },
  });
  return node;
}

function appendTo(doc: Document, key: string, items: unknown[], where: string): void {
  if (items.length === 0) return;
  const existing = doc.get(key, true);
  if (existing !== undefined && !(isSeq(existing) || (isScalar(existing) && existing.value === null))) {
    throw new BuildError(`${where}: ${key} is not a list`);
  }
  if (!isSeq(existing)) doc.set(key, doc.createNode([]));
  for (const item of items) doc.addIn([key], quoted(doc, item));
}

function setImages(doc: Document, images: NonNullable<KustomizeFields['images']>, where: string): void {
  for (const image of images) {
    const list = doc.get('images', true);
    const i = isSeq(list) ? list.items.findIndex((item) => isMap(item) && String(item.get('name')) === image.name) : -1;
    if (isSeq(list) && i >= 0) list.items[i] = quoted(doc, defined(image));
    else appendTo(doc, 'images', [defined(image)], where);
  }
}

async function presentComponents(dir: string, fields: KustomizeFields): Promise<string[]> {
  const components = fields.components ?? [];
  if (!fields.ignoreMissingComponents) return components;
  const present: string[] = [];
  for (const c of components) if (await statOrUndefined(join(dir, c))) present.push(c);
  return present;
}

/** Rewrites the kustomization file `file` of directory `dir` with the Kustomization's fields. */
export async function applyFields(root: string, dir: string, file: string, fields: KustomizeFields): Promise<void> {
  const where = display(root, file);
  const parsed = parseDocument(await readFile(file, 'utf8'), { schema: 'failsafe', prettyErrors: false });
  const err = parsed.errors[0];
  if (err) throw new BuildError(`${where} is not valid YAML: ${err.message.split('\n')[0]}`);
  const empty =
    parsed.contents === null ||
    (isScalar(parsed.contents) && (parsed.contents.value === null || parsed.contents.value === ''));
  const doc: Document = empty ? new Document({}, { schema: 'failsafe' }) : parsed;
  if (!isMap(doc.contents)) throw new BuildError(`${where} is not a YAML mapping`);

  if (fields.targetNamespace) doc.set('namespace', quoted(doc, fields.targetNamespace));
  if (fields.namePrefix) doc.set('namePrefix', quoted(doc, fields.namePrefix));
  if (fields.nameSuffix) doc.set('nameSuffix', quoted(doc, fields.nameSuffix));
  const patches = (fields.patches ?? []).map((p) => {
    const target = p.target ? defined(Object.fromEntries(SELECTOR_FIELDS.map((f) => [f, p.target?.[f]]))) : undefined;
    return target && Object.keys(target).length > 0 ? { patch: p.patch, target } : { patch: p.patch };
  });
  appendTo(doc, 'patches', patches, where);
  appendTo(doc, 'components', await presentComponents(dir, fields), where);
  setImages(doc, fields.images ?? [], where);
  // kustomize refuses a kustomization with nothing but apiVersion and kind; it builds to nothing.
  const keys = doc.contents.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key));
  if (keys.every((k) => k === 'apiVersion' || k === 'kind')) doc.set('resources', doc.createNode([]));

  await writeFile(file, doc.toString());
}
