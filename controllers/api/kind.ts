// A kind is described once: its schema (which is also its TypeScript type, through TypeBox),
// its defaults (JSON Schema `default`, applied by the API server from the CRD and by ajv in the
// controllers) and its CRD presentation (names, printer columns, categories).
import type { TSchema } from '@sinclair/typebox';

/** Where a kind lives in the API; enough to list, watch and patch it without discovery. */
export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'date' | 'integer' | 'number' | 'boolean';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition<Spec extends TSchema = TSchema, Status extends TSchema = TSchema> {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  categories?: string[];
  printerColumns: PrinterColumn[];
  /** Annotations on the CRD itself. */
  annotations?: Record<string, string>;
  description: string;
  spec: Spec;
  status: Status;
  /** Default for the whole status object (Flux defaults observedGeneration to -1). */
  statusDefault?: Record<string, unknown>;
}

export function resourceTypeOf(def: KindDefinition): ResourceType {
  return { group: def.group, version: def.version, kind: def.kind, plural: def.plural, namespaced: true };
}

/** The columns every Flux kind ends with. */
export const readyColumns: PrinterColumn[] = [
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].message' },
];
