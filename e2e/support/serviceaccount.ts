// What tide-controller needs to run out of cluster as one of the Helm chart's ServiceAccounts: the
// chart's ServiceAccounts and RBAC (rendered by helm-chart.ts) applied by the real kubectl, a token
// from `kubectl create token` in a kubeconfig that carries nothing else, and each Deployment's own
// args. Also: one permission taken away from those Roles, and `kubectl auth can-i` to see it enforced.
import type { KubernetesObject } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { testCluster } from './cluster.ts';

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);

/** The real kubectl as the test cluster's admin; `input` goes to its stdin. Resolves with its exit code. */
function runKubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = join(testCluster().binDir, 'kubectl');
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      [`--kubeconfig=${testCluster().kubeconfigPath}`, ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        if (typeof code !== 'number') reject(err ?? new Error(`kubectl ${args.join(' ')}: no exit code`));
        else resolve({ code, stdout, stderr });
      },
    );
    child.stdin!.end(input ?? '');
  });
}

/** kubectl's stdout; a non-zero exit fails with its stderr. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const { code, stdout, stderr } = await runKubectl(args, input);
  if (code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  return stdout;
}

/** The ServiceAccounts and RBAC objects of a rendered chart. */
export function rbacObjects(objects: KubernetesObject[]): KubernetesObject[] {
  return objects.filter((o) => RBAC_KINDS.has(o.kind!));
}

/** Applies objects with `kubectl apply --server-side`, as a user installs manifests. */
export async function kubectlApply(objects: KubernetesObject[]): Promise<void> {
  const docs = objects.map((o) => stringify(o)).join('---\n');
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=tide-test', '-f', '-'], docs);
}

/**
 * A kubeconfig for the ServiceAccount `namespace/name`: the test cluster's server and CA, and a
 * token from `kubectl create token` as its only credential. Returns the file's path.
 */
export async function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  const token = (await kubectl(['create', 'token', name, `--namespace=${namespace}`, '--duration=2h'])).trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`kubectl create token did not print a JWT for ${name}`);
  const admin = parse(readFileSync(testCluster().kubeconfigPath, 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const cluster = admin.clusters[0]!;
  const user = `system:serviceaccount:${namespace}:${name}`;
  const path = join(mkdtempSync(join(tmpdir(), 'tide-sa-')), 'kubeconfig');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [cluster],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: cluster.name, user, namespace } }],
      'current-context': user,
    }),
    { mode: 0o600 },
  );
  return path;
}

/** One controller's Deployment in the rendered chart: what it runs as and with. */
export interface ChartController {
  /** The --controllers value, e.g. source. */
  name: string;
  serviceAccount: string;
  /** The container's args, less the addresses and paths that only make sense in a pod. */
  args: string[];
}

// startController sets these to loopback ports and temp directories.
const POD_ONLY_FLAGS = new Set([
  'kubeconfig',
  'health-addr',
  'metrics-addr',
  'storage-addr',
  'storage-adv-addr',
  'storage-path',
  'image-storage-path',
  'kustomize-path',
  'sops-path',
  'helm-helper-path',
  'log-level',
]);

type PodTemplate = {
  spec?: { serviceAccountName?: string; containers?: { name: string; args?: string[] }[] };
};

/** The chart's Deployments by the controllers they run. */
export function chartControllers(objects: KubernetesObject[]): ChartController[] {
  return objects
    .filter((o) => o.kind === 'Deployment')
    .map((d) => {
      const pod = (d as { spec?: { template?: PodTemplate } }).spec?.template?.spec;
      const args = pod?.containers?.[0]?.args ?? [];
      const name = args.find((a) => a.startsWith('--controllers='))?.slice('--controllers='.length);
      if (!name || !pod?.serviceAccountName)
        throw new Error(`Deployment ${d.metadata?.name} names no --controllers= or serviceAccountName`);
      const flagName = (a: string) => a.replace(/^--/, '').split('=')[0]!;
      return {
        name,
        serviceAccount: pod.serviceAccountName,
        args: args.filter((a) => !POD_ONLY_FLAGS.has(flagName(a))),
      };
    });
}

export interface Permission {
  apiGroup: string;
  resource: string;
  verb: string;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  [field: string]: unknown;
}

type Role = KubernetesObject & { rules?: PolicyRule[] };
type Binding = KubernetesObject & {
  roleRef: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
};

/**
 * The chart's Roles and ClusterRoles bound to the ServiceAccount, rewritten so that none grants
 * `permission`; the other verbs and resources of each rule stay. Fails when no rule names it, or
 * when a bound role has a wildcard rule (not least privilege, and not narrowed by rewriting rules).
 */
export function withoutPermission(
  objects: KubernetesObject[],
  sa: { namespace: string; name: string },
  permission: Permission,
): Role[] {
  const bound = objects
    .filter((o): o is Binding => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
    .filter((b) => (b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === sa.name))
    .map((b) => ({ kind: b.roleRef.kind, name: b.roleRef.name, namespace: b.metadata?.namespace }));
  const roles = objects.filter((o): o is Role =>
    bound.some(
      (r) =>
        r.kind === o.kind &&
        r.name === o.metadata?.name &&
        (o.kind === 'ClusterRole' || r.namespace === o.metadata?.namespace),
    ),
  );
  const grants = (r: PolicyRule) =>
    (r.apiGroups ?? []).includes(permission.apiGroup) &&
    (r.resources ?? []).includes(permission.resource) &&
    r.verbs.includes(permission.verb);
  const wildcard = (r: PolicyRule) => [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs].includes('*');
  const changed: Role[] = [];
  for (const role of roles) {
    const rules = role.rules ?? [];
    if (rules.some(wildcard)) throw new Error(`${role.kind} ${role.metadata?.name} grants a wildcard`);
    if (!rules.some(grants)) continue;
    const narrowed = rules.flatMap((r): PolicyRule[] => {
      if (!grants(r)) return [r];
      const others = r.resources!.filter((x) => x !== permission.resource);
      const verbs = r.verbs.filter((v) => v !== permission.verb);
      return [
        ...(others.length ? [{ ...r, resources: others }] : []),
        ...(verbs.length ? [{ ...r, resources: [permission.resource], verbs }] : []),
      ];
    });
    changed.push({ ...role, rules: narrowed });
  }
  if (changed.length === 0) {
    const { verb, resource, apiGroup } = permission;
    throw new Error(`no Role bound to ${sa.name} grants ${verb} on ${resource} in API group "${apiGroup}"`);
  }
  return changed;
}

/** `kubectl auth can-i` for the ServiceAccount: whether the API server's authorizer allows it now. */
export async function canI(
  sa: { namespace: string; name: string },
  verb: string,
  resource: string,
  namespace?: string,
): Promise<boolean> {
  const args = ['auth', 'can-i', verb, resource, '--quiet', `--as=system:serviceaccount:${sa.namespace}:${sa.name}`];
  const { code, stderr } = await runKubectl([...args, namespace ? `--namespace=${namespace}` : '--all-namespaces']);
  if (code > 1) throw new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  return code === 0;
}
