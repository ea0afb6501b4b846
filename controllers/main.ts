#!/usr/bin/env node
// tide-controller: runs the chosen controllers against one cluster.
import { existsSync, readFileSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import type { GeneralOptions } from './flags.ts';
import { applyMemoryDefaults } from './runtime/memory.ts';
import type { RawArgs } from './runtime/options.ts';

// Node starts again here, once, with tide's memory defaults (README, "Memory"); the controllers
// load after that, so that they are loaded once.
applyMemoryDefaults();
const { KubeConfig } = await import('@kubernetes/client-node');
const { GENERAL, readCommandLine, usage } = await import('./flags.ts');
const { selectControllers } = await import('./registry.ts');
const { Logger } = await import('./runtime/logger.ts');
const { Manager } = await import('./runtime/manager.ts');
const { parseOptions } = await import('./runtime/options.ts');
const { flagGroup } = await import('./runtime/setup.ts');
type KubeConfig = InstanceType<typeof KubeConfig>;
type Manager = InstanceType<typeof Manager>;

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) {
    if (!existsSync(path)) throw new Error(`kubeconfig ${path} does not exist; pass an existing file to --kubeconfig`);
    kc.loadFromFile(path);
  } else if (process.env.KUBECONFIG) {
    kc.loadFromDefault();
  } else if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
  } else if (existsSync(join(homedir(), '.kube', 'config'))) {
    kc.loadFromDefault();
  } else {
    throw new Error('no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or run in a cluster');
  }
  if (!kc.getCurrentCluster())
    throw new Error(`kubeconfig ${path ?? '(default)'} has no current cluster; set current-context`);
  return kc;
}

function runtimeNamespace(): string {
  if (process.env.RUNTIME_NAMESPACE) return process.env.RUNTIME_NAMESPACE;
  if (existsSync(SA_NAMESPACE_FILE)) return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
  return 'default';
}

async function main(): Promise<void> {
  let args: RawArgs;
  try {
    args = readCommandLine(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n${usage()}`);
    process.exit(2);
  }
  let flags: GeneralOptions;
  try {
    flags = parseOptions(GENERAL, args);
  } catch (err) {
    const encoding = args.get('log-encoding') === 'console' ? 'console' : 'json';
    new Logger({ level: 'info', encoding }).error((err as Error).message);
    process.exit(1);
  }
  if (flags.help) {
    process.stdout.write(usage());
    return;
  }
  const logger = new Logger({ level: flags.logLevel, encoding: flags.logEncoding });
  const fail = (err: unknown): never => {
    logger.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  };

  let manager: Manager;
  try {
    const { selected, unavailable } = selectControllers(flags.controllers);
    if (unavailable.length > 0) logger.info('controllers not available in this build', { controllers: unavailable });
    // Every chosen controller's flags are checked before anything connects to the cluster.
    const setups = selected.map((c) => ({ c, options: parseOptions(flagGroup(c), args) }));
    const names = selected.map((c) => c.name);
    const namespace = runtimeNamespace();
    const kc = loadKubeConfig(flags.kubeconfig);
    const leaderId = flags.leaderElectionId ?? `tide-${names.length ? names.join('-') : 'controller'}-leader-election`;
    manager = new Manager({
      kubeConfig: kc,
      logger,
      metricsAddr: flags.metricsAddr,
      healthAddr: flags.healthAddr,
      namespace: flags.watchAllNamespaces ? undefined : namespace,
      labelSelector: flags.watchLabelSelector || undefined,
      concurrency: flags.concurrent,
      retry: { minRetryDelayMs: flags.minRetryDelay, maxRetryDelayMs: flags.maxRetryDelay },
      gracefulShutdownMs: flags.gracefulShutdownTimeout,
      leaderElection: flags.enableLeaderElection
        ? {
            namespace: flags.leaderElectionNamespace ?? namespace,
            name: leaderId,
            identity: `${hostname()}_${process.pid}_${Math.random().toString(16).slice(2, 10)}`,
            leaseDurationMs: flags.leaderElectionLeaseDuration,
            renewDeadlineMs: flags.leaderElectionRenewDeadline,
            retryPeriodMs: flags.leaderElectionRetryPeriod,
          }
        : undefined,
      onLostLeadership: () => fail(new Error('leader election lost; exiting so that a fresh start can campaign again')),
    });
    for (const { c, options } of setups) await c.setup({ manager, options });
    await manager.start();
    logger.info('tide-controller started', {
      controllers: names,
      metricsAddr: flags.metricsAddr,
      healthAddr: flags.healthAddr,
    });
  } catch (err) {
    return fail(err);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.error('second signal; exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    manager.stop().then(
      () => process.exit(0),
      (err: unknown) => fail(err),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
