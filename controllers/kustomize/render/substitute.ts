// spec.postBuild: variables from substituteFrom (ConfigMaps and Secrets, later ones winning) and
// substitute (winning over all of them) are expanded in each built object's YAML, as Flux does.
// As in Flux:
// - nothing happens when no variable is defined, not even defaults (`${x:=a}` stays as it is);
// - an object labelled or annotated kustomize.toolkit.fluxcd.io/substitute: disabled is left alone;
// - an undefined variable without a default becomes the empty string, unless `strict` (Flux's
//   StrictPostBuildSubstitutions feature gate) makes it an error;
// - newlines are removed from values, and every variable name must match VAR_NAME.
import { BuildError } from './errors.ts';
import { expand } from './envsubst.ts';
import { asManifest, describeObject, parseYamlStream, toYaml } from './objects.ts';
import type { Manifest } from './objects.ts';

export interface SubstituteReference {
  kind: string;
  name: string;
  optional?: boolean;
}

export interface PostBuild {
  substitute?: Record<string, string>;
  substituteFrom?: SubstituteReference[];
}

/**
 * Reads the `data` of a ConfigMap or Secret in the Kustomization's namespace, as stored in the
 * API (a Secret's values base64-encoded); undefined when it does not exist. Any other failure
 * should throw.
 */
export type VariableSource = (
  kind: 'ConfigMap' | 'Secret',
  name: string,
) => Promise<Record<string, string> | undefined>;

export interface SubstituteOptions {
  strict?: boolean;
}

export const SUBSTITUTE_KEY = 'kustomize.toolkit.fluxcd.io/substitute';
const VAR_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;
const VAR_NAME_POSIX = '^[_[:alpha:]][_[:alpha:][:digit:]]*$';

interface Variable {
  value: string;
  from: string;
}

/** The variables of `postBuild`, with where each came from; throws for a missing required object. */
export async function loadVariables(postBuild: PostBuild, read: VariableSource): Promise<Map<string, Variable>> {
  const vars = new Map<string, Variable>();
  for (const ref of postBuild.substituteFrom ?? []) {
    const from = `${ref.kind}/${ref.name}`;
    if (ref.kind !== 'ConfigMap' && ref.kind !== 'Secret')
      throw new BuildError(`substituteFrom ${from}: kind must be ConfigMap or Secret`);
    let data: Record<string, string> | undefined;
    try {
      data = await read(ref.kind, ref.name);
    } catch (err) {
      throw new BuildError(`substituteFrom ${from}: ${(err as Error).message}`);
    }
    if (data === undefined) {
      if (ref.optional) continue;
      throw new BuildError(`substituteFrom ${from} not found; create it or mark the reference optional`);
    }
    for (const [key, raw] of Object.entries(data)) {
      const value = ref.kind === 'Secret' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
      vars.set(key, { value: value.replaceAll('\n', ''), from });
    }
  }
  for (const [key, value] of Object.entries(postBuild.substitute ?? {})) {
    vars.set(key, { value: value.replaceAll('\n', ''), from: 'postBuild.substitute' });
  }
  for (const [key, { from }] of vars) {
    if (!VAR_NAME.test(key))
      throw new BuildError(`variable name '${key}' (from ${from}) is invalid, must match '${VAR_NAME_POSIX}'`);
  }
  return vars;
}

function disabled(obj: Manifest): boolean {
  return (
    obj.metadata.labels?.[SUBSTITUTE_KEY] === 'disabled' || obj.metadata.annotations?.[SUBSTITUTE_KEY] === 'disabled'
  );
}

function substituteOne(obj: Manifest, vars: Map<string, Variable>, opts: SubstituteOptions): Manifest {
  const what = describeObject(obj);
  let text: string;
  try {
    text = expand(toYaml(obj), (name) => vars.get(name)?.value, opts);
  } catch (err) {
    throw new BuildError(`post build substitution failed for ${what}: ${(err as Error).message}`);
  }
  const docs = parseYamlStream(text, `post build substitution of ${what}`);
  if (docs.length !== 1)
    throw new BuildError(`post build substitution of ${what} produced ${docs.length} documents instead of one`);
  return asManifest(docs[0]!.value, `${what} after post build substitution`);
}

/** Applies `postBuild` to `objects`; returns them unchanged when there is nothing to substitute. */
export async function substitute(
  objects: Manifest[],
  postBuild: PostBuild | undefined,
  read: VariableSource,
  opts: SubstituteOptions = {},
): Promise<Manifest[]> {
  if (!postBuild) return objects;
  const vars = await loadVariables(postBuild, read);
  if (vars.size === 0) return objects;
  return objects.map((obj) => (disabled(obj) ? obj : substituteOne(obj, vars, opts)));
}
