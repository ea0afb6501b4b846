// Every kind Tide serves; crds/ is generated from this list.
import type { KindDefinition } from './kind.ts';
import { KustomizationKind } from './kustomize/kustomization.ts';
import { GitRepositoryKind } from './source/gitrepository.ts';

export const ALL_KINDS: KindDefinition[] = [GitRepositoryKind, KustomizationKind];
