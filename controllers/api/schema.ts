// Turns a kind's TypeBox schema into the plain structural schema that both the CRD and ajv use,
// so the API server and the controllers validate and default in the same way.
import type { TSchema } from '@sinclair/typebox';
import type { KindDefinition } from './kind.ts';

type Json = Record<string, unknown>;

/** Plain JSON (no TypeBox symbols), with Record's patternProperties as additionalProperties. */
export function structural(schema: TSchema): Json {
  return rewrite(JSON.parse(JSON.stringify(schema)) as Json);
}

function rewrite(node: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'patternProperties' && isObject(value)) {
      const [only] = Object.values(value);
      out.additionalProperties = rewrite(only as Json);
    } else if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v as Json)]));
    } else if (key === 'items' && isObject(value)) {
      out.items = rewrite(value);
    } else if (key === 'additionalProperties' && isObject(value)) {
      out.additionalProperties = rewrite(value);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The openAPIV3Schema of the kind's CRD. */
export function objectSchema(def: KindDefinition): Json {
  const status = structural(def.status);
  return {
    description: def.description,
    type: 'object',
    properties: {
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      },
      metadata: { type: 'object' },
      spec: structural(def.spec),
      status: def.statusDefault ? { ...status, default: def.statusDefault } : status,
    },
  };
}
