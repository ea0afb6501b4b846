// charts/tide through the real Helm CLI: rendered objects by kind and name, and the permissions a
// rendered ServiceAccount is granted by the chart's own Roles and ClusterRoles.
import type { KubernetesObject } from '@kubernetes/client-node';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helm } from './chartrepo.ts';

export const TIDE_CHART = join(import.meta.dirname, '..', '..', 'charts', 'tide');

export interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

export type Rendered = KubernetesObject & Record<string, unknown>;

/** `helm template` of the chart with `--set` values: every object, in Helm's order. */
export async function helmTemplate(namespace: string, set: string[] = [], release = 'tide'): Promise<Rendered[]> {
  const out = await helm([
    'template',
    release,
    TIDE_CHART,
    `--namespace=${namespace}`,
    ...set.flatMap((s) => ['--set', s]),
  ]);
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Rendered | null)
    .filter((o): o is Rendered => Boolean(o?.kind));
}

export function ofKind(objects: Rendered[], kind: string): Rendered[] {
  return objects.filter((o) => o.kind === kind);
}

export function named(objects: Rendered[], kind: string, name: string): Rendered {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found)
    throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found;
}

/** "group resource verb" for every permission the chart's (Cluster)Roles grant the ServiceAccount. */
export function grants(objects: Rendered[], serviceAccount: string): { cluster: Set<string>; namespaced: Set<string> } {
  const bound = (kind: string) =>
    ofKind(objects, kind)
      .filter((b) => (b.subjects as { kind: string; name: string }[]).some((s) => s.name === serviceAccount))
      .map((b) => (b.roleRef as { kind: string; name: string }).name);
  const permissions = (roleKind: string, names: string[]) =>
    new Set(
      ofKind(objects, roleKind)
        .filter((r) => names.includes(r.metadata!.name!))
        .flatMap((r) => r.rules as Rule[])
        .flatMap((rule) =>
          (rule.apiGroups ?? []).flatMap((g) =>
            (rule.resources ?? []).flatMap((res) => rule.verbs.map((v) => `${g} ${res} ${v}`)),
          ),
        ),
    );
  return {
    cluster: permissions('ClusterRole', bound('ClusterRoleBinding')),
    namespaced: permissions('Role', bound('RoleBinding')),
  };
}

/** The first container of a Deployment. */
export function container(deployment: Rendered): Record<string, unknown> & { args: string[] } {
  const spec = deployment.spec as {
    template: { spec: { containers: (Record<string, unknown> & { args: string[] })[] } };
  };
  return spec.template.spec.containers[0]!;
}

export function podSpec(deployment: Rendered): Record<string, unknown> {
  return (deployment.spec as { template: { spec: Record<string, unknown> } }).template.spec;
}
