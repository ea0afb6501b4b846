// Kubernetes objects as kustomize writes them, read the way the API server will read them.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import type { DocumentOptions, ParseOptions, SchemaOptions, ToStringOptions } from 'yaml';
import { BuildError } from './errors.ts';

/** A built object: apiVersion, kind and metadata.name are always set. */
export interface Manifest extends KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string };
  [field: string]: unknown;
}

/**
 * Kubernetes decodes YAML 1.1 (`0755` is octal, `yes` is true), but without timestamps or
 * base-60 numbers: `22:22` and `2024-01-01` stay strings. Matching it means a manifest means
 * the same here as in the cluster.
 */
const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions & ToStringOptions = {
  version: '1.1',
  merge: true,
  customTags: (tags) =>
    tags.filter((t) => typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:timestamp' && t.format !== 'TIME')),
  lineWidth: 0,
};

/** Parses a multi-document YAML stream; `source` names it in errors. Empty documents are skipped. */
export function parseYamlStream(text: string, source: string): { index: number; value: unknown }[] {
  const out: { index: number; value: unknown }[] = [];
  for (const [i, doc] of parseAllDocuments(text, YAML_OPTIONS).entries()) {
    const err = doc.errors[0];
    if (err) throw new BuildError(`${source}: document ${i + 1} is not valid YAML: ${err.message.split('\n')[0]}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push({ index: i + 1, value });
  }
  return out;
}

export function toYaml(obj: Manifest): string {
  return stringify(obj, YAML_OPTIONS);
}

export function describeObject(value: unknown): string {
  const o = (value ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const parts = [o.kind, o.metadata?.namespace, o.metadata?.name].filter((p) => typeof p === 'string' && p !== '');
  return parts.length > 0 ? parts.join('/') : 'an object';
}

/** Checks that `value` is an object the API server could take; `where` names it in the error. */
export function asManifest(value: unknown, where: string): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BuildError(`${where} is not a YAML mapping`);
  const o = value as Partial<Manifest>;
  const missing = [
    typeof o.apiVersion === 'string' && o.apiVersion !== '' ? undefined : 'apiVersion',
    typeof o.kind === 'string' && o.kind !== '' ? undefined : 'kind',
    typeof o.metadata?.name === 'string' && o.metadata.name !== '' ? undefined : 'metadata.name',
  ].filter((f) => f !== undefined);
  if (missing.length > 0) throw new BuildError(`${where} (${describeObject(value)}) has no ${missing.join(', ')}`);
  return o as Manifest;
}

/** The objects of kustomize's output, in order. */
export function parseManifests(text: string): Manifest[] {
  return parseYamlStream(text, 'kustomize build output').map(({ index, value }) =>
    asManifest(value, `document ${index} of the kustomize build output`),
  );
}

/**
 * spec.commonMetadata: set on each object's own metadata only, never on selectors or pod
 * templates, and after substitution, as Flux does (a label change must not roll out pods).
 */
export function setCommonMetadata(
  objects: Manifest[],
  common: { labels?: Record<string, string>; annotations?: Record<string, string> } | undefined,
): Manifest[] {
  if (!common) return objects;
  const { labels, annotations } = common;
  return objects.map((o) => ({
    ...o,
    metadata: {
      ...o.metadata,
      ...(labels && Object.keys(labels).length > 0 ? { labels: { ...o.metadata.labels, ...labels } } : {}),
      ...(annotations && Object.keys(annotations).length > 0
        ? { annotations: { ...o.metadata.annotations, ...annotations } }
        : {}),
    },
  }));
}
