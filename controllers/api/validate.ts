// Validates and defaults specs in the controllers with the same schema the CRD carries: the API
// server already checks on write, but objects stored under an older schema and fields with
// defaults still pass through here before a reconciler trusts them.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { KindDefinition } from './kind.ts';
import { structural } from './schema.ts';

const ajv = new Ajv({
  useDefaults: true,
  allErrors: true,
  validateFormats: false,
  strict: true,
  keywords: [
    'x-kubernetes-validations',
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
  ],
});

const compiled = new WeakMap<KindDefinition, ValidateFunction>();

export interface SpecCheck<T> {
  spec: T;
  errors: string[];
}

/** Returns a defaulted copy of the spec and the validation errors, as `spec.field: problem` lines. */
export function checkSpec<T>(def: KindDefinition, spec: unknown): SpecCheck<T> {
  let validate = compiled.get(def);
  if (!validate) {
    validate = ajv.compile(structural(def.spec));
    compiled.set(def, validate);
  }
  const copy = structuredClone(spec ?? {});
  const ok = validate(copy);
  return { spec: copy as T, errors: ok ? [] : (validate.errors ?? []).map(describe) };
}

function describe(e: ErrorObject): string {
  const path = `spec${e.instancePath.replace(/\//g, '.')}`;
  if (e.keyword === 'required') return `${path}.${(e.params as { missingProperty: string }).missingProperty}: required`;
  if (e.keyword === 'enum')
    return `${path}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${path}: ${e.message}`;
}
