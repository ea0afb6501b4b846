// The whole way from an unpacked artifact to the objects to apply, in Flux's order: kustomize
// build (with the Kustomization's kustomize fields), SOPS decryption, post-build substitution,
// then commonMetadata, which Flux sets after substitution so its values are never expanded.
import { decryptObjects, type DecryptOptions } from './decrypt.ts';
import { build } from './kustomize.ts';
import type { KustomizeFields, KustomizeOptions } from './kustomize.ts';
import { setCommonMetadata } from './objects.ts';
import type { Manifest } from './objects.ts';
import { substitute } from './substitute.ts';
import type { PostBuild, VariableSource } from './substitute.ts';

export interface BuildSpec extends KustomizeFields {
  path?: string;
  postBuild?: PostBuild;
  commonMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

export interface BuildManifestsOptions extends KustomizeOptions {
  readVariables: VariableSource;
  /** Flux's StrictPostBuildSubstitutions feature gate. */
  strictSubstitution?: boolean;
  /** SOPS decryption; without it, a SOPS-encrypted Secret fails the build. */
  decryption?: Omit<DecryptOptions, 'timeoutMs'>;
}

/** Builds `spec` from the artifact unpacked in `dir`, which is only read. */
export async function buildManifests(dir: string, spec: BuildSpec, opts: BuildManifestsOptions): Promise<Manifest[]> {
  const built = await build(dir, spec.path, spec, opts);
  const decrypted = await decryptObjects(built, {
    sopsPath: 'sops',
    keys: undefined,
    ...opts.decryption,
    timeoutMs: opts.timeoutMs,
  });
  const substituted = await substitute(decrypted, spec.postBuild, opts.readVariables, {
    strict: opts.strictSubstitution,
  });
  return setCommonMetadata(substituted, spec.commonMetadata);
}
