// tide-controller's flags, named as Flux's controllers name them, in Go's --flag=value style.
import { parseArgs } from 'node:util';

interface FlagSpec {
  default?: string;
  boolean?: boolean;
  help: string;
}

export const FLAGS: Record<string, FlagSpec> = {
  kubeconfig: { help: 'Path to a kubeconfig; defaults to $KUBECONFIG, in-cluster config, then ~/.kube/config.' },
  controllers: {
    default: 'all',
    help: 'Controllers to run: all, or a comma-separated list of source, kustomize, helm, image, notification.',
  },
  'metrics-addr': { default: ':8080', help: 'The address the Prometheus metric endpoint binds to (0 disables).' },
  'health-addr': { default: ':9440', help: 'The address the health endpoint binds to (0 disables).' },
  concurrent: { default: '4', help: 'The number of concurrent reconciles per controller.' },
  'watch-all-namespaces': {
    default: 'true',
    boolean: true,
    help: 'Watch all namespaces; when false, only the runtime namespace.',
  },
  'watch-label-selector': { default: '', help: 'Watch only objects matching this label selector (sharding).' },
  'log-level': { default: 'info', help: 'Log verbosity: trace, debug, info, error.' },
  'log-encoding': { default: 'json', help: 'Log encoding: json or console.' },
  'min-retry-delay': { default: '750ms', help: 'The minimum delay before retrying a failed reconcile.' },
  'max-retry-delay': { default: '15m', help: 'The maximum delay before retrying a failed reconcile.' },
  'enable-leader-election': {
    default: 'false',
    boolean: true,
    help: 'Elect a leader with a Lease; only the leader reconciles.',
  },
  'leader-election-namespace': { help: 'Namespace of the leader election Lease; defaults to the runtime namespace.' },
  'leader-election-id': { help: 'Name of the leader election Lease; defaults to tide-<controllers>-leader-election.' },
  'leader-election-lease-duration': { default: '35s', help: 'How long a lease is valid without renewal.' },
  'leader-election-renew-deadline': { default: '30s', help: 'How long the leader retries renewing before giving up.' },
  'leader-election-retry-period': { default: '5s', help: 'How often candidates try to acquire or renew the lease.' },
  'graceful-shutdown-timeout': { default: '30s', help: 'How long in-flight reconciles may run after SIGTERM.' },
  'storage-path': { default: 'data', help: 'source: directory the artifacts are stored in.' },
  'storage-addr': { default: ':9090', help: 'source: the address the artifact HTTP server binds to.' },
  'storage-adv-addr': {
    help: 'source: host:port of artifact URLs; defaults to the hostname and the --storage-addr port.',
  },
  'artifact-retention-records': { default: '2', help: 'source: how many artifacts of one object are kept.' },
  'git-max-size': { default: '1073741824', help: 'source: bytes a fetch may download and an artifact may unpack to.' },
  'requeue-dependency': {
    default: '30s',
    help: 'kustomize: how soon a Kustomization waiting for dependencies checks again.',
  },
  'kustomize-path': { default: 'kustomize', help: 'kustomize: the kustomize v5 binary.' },
  'sops-path': { default: 'sops', help: 'kustomize: the sops binary, for spec.decryption.' },
  'no-cross-namespace-refs': {
    default: 'false',
    boolean: true,
    help: 'kustomize: refuse sourceRef and dependsOn in another namespace (multi-tenancy lockdown).',
  },
  'default-service-account': {
    default: '',
    help: 'kustomize: the ServiceAccount to impersonate when a Kustomization names none (multi-tenancy lockdown).',
  },
  'watch-configs-label-selector': {
    default: 'reconcile.fluxcd.io/watch=Enabled',
    help: 'kustomize: ConfigMaps and Secrets with these labels re-queue the Kustomizations that use them when they change.',
  },
  help: { default: 'false', boolean: true, help: 'Print this help.' },
};

export type Flags = Record<string, string | undefined>;

export function parseFlags(argv: string[]): Flags {
  // Go flags accept a bare boolean (--enable-leader-election) and --flag=false; parseArgs only
  // one of the two, so bare booleans are spelled out first.
  const normalized = argv.map((a) => {
    const name = a.replace(/^--?/, '');
    return FLAGS[name]?.boolean ? `--${name}=true` : a;
  });
  const { values } = parseArgs({
    args: normalized,
    options: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
    strict: true,
    allowPositionals: false,
  });
  const flags: Flags = {};
  for (const [name, spec] of Object.entries(FLAGS)) {
    const v = (values as Record<string, string | undefined>)[name] ?? spec.default;
    if (spec.boolean && v !== undefined && v !== 'true' && v !== 'false') {
      throw new Error(`invalid --${name}="${v}": expected true or false`);
    }
    flags[name] = v;
  }
  return flags;
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, s]) =>
      `  --${name}${s.default !== undefined && !s.boolean ? ` (default "${s.default}")` : ''}\n      ${s.help}`,
  );
  return `Usage: tide-controller [flags]\n\n${lines.join('\n')}\n`;
}
