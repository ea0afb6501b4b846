// tide-controller's command line: the manager's own flags, named as Flux's controllers name them,
// and the flags each controller declares next to its setup, read together in Go's style.
import { CONTROLLER_NAMES, CONTROLLERS } from './registry.ts';
import type { LogEncoding, LogLevel } from './runtime/logger.ts';
import { flag, readArgs, usage as usageOf, type FlagGroup, type Options, type RawArgs } from './runtime/options.ts';
import { flagGroup } from './runtime/setup.ts';

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'error'];
const LOG_ENCODINGS: readonly LogEncoding[] = ['json', 'console'];

export const generalFlags = {
  kubeconfig: flag.string({
    help: 'Path to a kubeconfig; defaults to $KUBECONFIG, in-cluster config, then ~/.kube/config.',
  }),
  controllers: flag.string({
    default: 'all',
    help: `Controllers to run: all, or a comma-separated list of ${CONTROLLER_NAMES.join(', ')}.`,
  }),
  'metrics-addr': flag.string({
    default: ':8080',
    help: 'The address the Prometheus metric endpoint binds to (0 disables).',
  }),
  'health-addr': flag.string({ default: ':9440', help: 'The address the health endpoint binds to (0 disables).' }),
  concurrent: flag.int({ default: 4, min: 1, help: 'The number of concurrent reconciles per controller.' }),
  'watch-all-namespaces': flag.bool({
    default: true,
    help: 'Watch all namespaces; when false, only the runtime namespace.',
  }),
  'watch-label-selector': flag.string({
    default: '',
    help: 'Watch only objects matching this label selector (sharding).',
  }),
  'log-level': flag.string({ default: 'info', oneOf: LOG_LEVELS, help: 'Log verbosity.' }),
  'log-encoding': flag.string({ default: 'json', oneOf: LOG_ENCODINGS, help: 'Log encoding.' }),
  'min-retry-delay': flag.duration({ default: '750ms', help: 'The minimum delay before retrying a failed reconcile.' }),
  'max-retry-delay': flag.duration({ default: '15m', help: 'The maximum delay before retrying a failed reconcile.' }),
  'enable-leader-election': flag.bool({ help: 'Elect a leader with a Lease; only the leader reconciles.' }),
  'leader-election-namespace': flag.string({
    help: 'Namespace of the leader election Lease; defaults to the runtime namespace.',
  }),
  'leader-election-id': flag.string({
    help: 'Name of the leader election Lease; defaults to tide-<controllers>-leader-election.',
  }),
  'leader-election-lease-duration': flag.duration({
    default: '35s',
    help: 'How long a lease is valid without renewal.',
  }),
  'leader-election-renew-deadline': flag.duration({
    default: '30s',
    help: 'How long the leader retries renewing before giving up.',
  }),
  'leader-election-retry-period': flag.duration({
    default: '5s',
    help: 'How often candidates try to acquire or renew the lease.',
  }),
  'graceful-shutdown-timeout': flag.duration({
    default: '30s',
    help: 'How long in-flight reconciles may run after SIGTERM.',
  }),
  help: flag.bool({ help: 'Print this help.' }),
};

export type GeneralOptions = Options<typeof generalFlags>;

/** The manager's flags; errors about them name no controller. */
export const GENERAL: FlagGroup<typeof generalFlags> = { title: 'General', named: false, flags: generalFlags };

const groups = (): FlagGroup[] => [GENERAL, ...CONTROLLERS.map(flagGroup)];

/**
 * Every flag of the command line by name, the flags of controllers that will not run included
 * (so that one command line serves any --controllers); throws a UsageError on what it cannot read.
 */
export function readCommandLine(argv: readonly string[]): RawArgs {
  return readArgs(argv, groups());
}

export function usage(): string {
  return usageOf('tide-controller', groups());
}
