// The contract between tide-controller and a controller: each controller module exports one
// descriptor naming it, declaring its flags and wiring it into a manager with typed options.
import type { Manager } from './manager.ts';
import { flag, parseOptions, readArgs, type FlagGroup, type FlagSet, type Options } from './options.ts';

export interface SetupContext<O> {
  manager: Manager;
  options: O;
}

/** A Kubernetes RBAC rule (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/**
 * What a controller's ServiceAccount must be allowed, declared beside the code that makes the calls
 * so that the Helm chart grants exactly this (charts/src renders it) and nothing else.
 */
export interface ControllerRbac {
  /** Granted cluster-wide: the controller watches every namespace. */
  rules: readonly PolicyRule[];
  /**
   * It applies whatever objects its sources hold, so no fixed list of rules can cover it: installs
   * bind a broad ClusterRole (cluster-admin unless narrowed) on top of `rules`.
   */
  appliesAnyObject?: boolean;
}

export interface ControllerDescriptor<F extends FlagSet = FlagSet> {
  /** The name --controllers takes, e.g. "kustomize". */
  name: string;
  flags: F;
  rbac: ControllerRbac;
  // A method, so that a descriptor with its own options is still a ControllerDescriptor<FlagSet>.
  setup(ctx: SetupContext<Options<F>>): Promise<void> | void;
}

/** Infers the options type of setup from the flags. */
export function defineController<F extends FlagSet>(descriptor: ControllerDescriptor<F>): ControllerDescriptor<F> {
  return descriptor;
}

/** The flags of a controller as --help heads them and errors name them. */
export function flagGroup<F extends FlagSet>(c: ControllerDescriptor<F>): FlagGroup<F> {
  return { title: `${c.name} controller`, named: true, flags: c.flags };
}

/** A controller's options from its own flags alone (for tests and tools that run one controller). */
export function optionsFrom<F extends FlagSet>(c: ControllerDescriptor<F>, argv: readonly string[]): Options<F> {
  const group = flagGroup(c);
  return parseOptions(group, readArgs(argv, [group]));
}

/**
 * Flags more than one controller reads, declared once: tide-controller takes each once, whichever
 * controllers run (Flux's controllers each have their own copy of these).
 */
export const sharedFlags = {
  'requeue-dependency': flag.duration({
    default: '30s',
    help: 'How soon an object waiting for dependencies or its source checks again.',
  }),
  'no-cross-namespace-refs': flag.bool({
    help: 'Refuse references to sources and dependencies in another namespace (multi-tenancy lockdown).',
  }),
  'default-service-account': flag.string({
    default: '',
    help: 'The ServiceAccount to impersonate when an object names none (multi-tenancy lockdown).',
  }),
  'watch-configs-label-selector': flag.string({
    default: 'reconcile.fluxcd.io/watch=Enabled',
    help: 'ConfigMaps and Secrets with these labels re-queue the objects that use them when they change.',
  }),
  'helm-helper-path': flag.string({
    default: 'tide-helm',
    help: 'The Helm helper binary (controllers/helm/helper, on the Helm 4 SDK).',
  }),
};

/**
 * The rules the manager itself needs, whichever controllers it runs: Events on the objects
 * (runtime/events.ts), the preflight's read of the CRDs of the kinds the controllers' `rules` name
 * and of the leader election namespace (runtime/manager.ts).
 */
export function managerRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const crds = rules.flatMap((r) =>
    r.apiGroups
      .filter((g) => g.includes('.') && !g.endsWith('.k8s.io'))
      .flatMap((g) => r.resources.filter((res) => !res.includes('/')).map((res) => `${res}.${g}`)),
  );
  return [
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    {
      apiGroups: ['apiextensions.k8s.io'],
      resources: ['customresourcedefinitions'],
      verbs: ['get'],
      resourceNames: [...new Set(crds)].sort(),
    },
  ];
}

/** The leader election Lease (runtime/leader.ts), granted only in the namespace it lives in. */
export const leaderElectionRules: readonly PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/** Read, watch, and write metadata (finalizers) and status of the kinds a controller reconciles. */
export function reconcilesRules(apiGroup: string, resources: readonly string[]): PolicyRule[] {
  return [
    { apiGroups: [apiGroup], resources: [...resources], verbs: ['get', 'list', 'watch', 'patch'] },
    { apiGroups: [apiGroup], resources: resources.map((r) => `${r}/status`), verbs: ['patch'] },
  ];
}
