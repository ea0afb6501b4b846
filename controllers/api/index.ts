// Every kind Tide serves; crds/ is generated from this list.
import { HelmReleaseKind } from './helm/helmrelease.ts';
import { ImagePolicyKind } from './image/imagepolicy.ts';
import { ImageRepositoryKind } from './image/imagerepository.ts';
import { ImageUpdateAutomationKind } from './image/imageupdateautomation.ts';
import type { KindDefinition } from './kind.ts';
import { KustomizationKind } from './kustomize/kustomization.ts';
import { GitRepositoryKind } from './source/gitrepository.ts';
import { HelmChartKind } from './source/helmchart.ts';
import { HelmRepositoryKind } from './source/helmrepository.ts';
import { OCIRepositoryKind } from './source/ocirepository.ts';

export const ALL_KINDS: KindDefinition[] = [
  GitRepositoryKind,
  HelmRepositoryKind,
  HelmChartKind,
  OCIRepositoryKind,
  KustomizationKind,
  HelmReleaseKind,
  ImageRepositoryKind,
  ImagePolicyKind,
  ImageUpdateAutomationKind,
];
