#!/usr/bin/env node
// tide-controller: runs the chosen controllers against one cluster.
import { KubeConfig } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { parseFlags, usage, type Flags } from './flags.ts';
import { SETUPS, selectControllers } from './registry.ts';
import { parseDuration } from './runtime/duration.ts';
import { Logger, parseLogEncoding, parseLogLevel } from './runtime/logger.ts';
import { Manager } from './runtime/manager.ts';

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

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`invalid --${flag}="${value}": expected a positive integer`);
  return n;
}

function duration(flags: Flags, name: string): number {
  try {
    return parseDuration(flags[name]!);
  } catch (err) {
    throw new Error(`invalid --${name}: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n${usage()}`);
    process.exit(2);
  }
  if (flags.help === 'true') {
    process.stdout.write(usage());
    return;
  }
  const logger = new Logger({
    level: parseLogLevel(flags['log-level']!),
    encoding: parseLogEncoding(flags['log-encoding']!),
  });
  const fail = (err: unknown): never => {
    logger.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  };

  let manager: Manager;
  try {
    const { selected, unavailable } = selectControllers(flags.controllers!);
    if (unavailable.length > 0) logger.info('controllers not available in this build', { controllers: unavailable });
    const namespace = runtimeNamespace();
    const kc = loadKubeConfig(flags.kubeconfig);
    const leaderId =
      flags['leader-election-id'] ?? `tide-${selected.length ? selected.join('-') : 'controller'}-leader-election`;
    manager = new Manager({
      kubeConfig: kc,
      logger,
      metricsAddr: flags['metrics-addr'],
      healthAddr: flags['health-addr'],
      namespace: flags['watch-all-namespaces'] === 'true' ? undefined : namespace,
      labelSelector: flags['watch-label-selector'] || undefined,
      concurrency: positiveInt('concurrent', flags.concurrent!),
      retry: {
        minRetryDelayMs: duration(flags, 'min-retry-delay'),
        maxRetryDelayMs: duration(flags, 'max-retry-delay'),
      },
      gracefulShutdownMs: duration(flags, 'graceful-shutdown-timeout'),
      leaderElection:
        flags['enable-leader-election'] === 'true'
          ? {
              namespace: flags['leader-election-namespace'] ?? namespace,
              name: leaderId,
              identity: `${hostname()}_${process.pid}_${Math.random().toString(16).slice(2, 10)}`,
              leaseDurationMs: duration(flags, 'leader-election-lease-duration'),
              renewDeadlineMs: duration(flags, 'leader-election-renew-deadline'),
              retryPeriodMs: duration(flags, 'leader-election-retry-period'),
            }
          : undefined,
      onLostLeadership: () => fail(new Error('leader election lost; exiting so that a fresh start can campaign again')),
    });
    for (const name of selected) await SETUPS[name]!({ manager, args: flags });
    await manager.start();
    logger.info('tide-controller started', {
      controllers: selected,
      metricsAddr: flags['metrics-addr'],
      healthAddr: flags['health-addr'],
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
