#!/usr/bin/env node
// tide: the command line for Tide's objects, in the spirit of the flux CLI.
//   tide reconcile <kind> <name> [-n NS] [--timeout 5m]   ask for a reconcile now and wait for it
//   tide suspend <kind> <name> [-n NS]                     set spec.suspend
//   tide resume <kind> <name> [-n NS] [--timeout 5m]       clear spec.suspend and wait for a reconcile
//   tide version
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { ALL_KINDS } from '../api/index.ts';
import type { KindDefinition } from '../api/kind.ts';
import { findCondition, type Condition } from '../runtime/conditions.ts';
import { REQUESTED_AT_ANNOTATION } from '../runtime/controller.ts';
import { parseDuration } from '../runtime/duration.ts';
import { shareConnections } from '../runtime/kubeconfig.ts';
import pkg from '../../package.json' with { type: 'json' };
import { errorMessage } from '../runtime/api-errors.ts';

const USAGE = `Usage:
  tide reconcile <kind> <name> [-n namespace] [--timeout 5m]
  tide suspend <kind> <name> [-n namespace]
  tide resume <kind> <name> [-n namespace] [--timeout 5m]
  tide version
Common flags: --kubeconfig PATH
Kinds: ${ALL_KINDS.map((k) => `${k.singular}${k.shortNames ? ` (${k.shortNames.join(', ')})` : ''}`).join(', ')}
`;

type Obj = {
  metadata?: { generation?: number; annotations?: Record<string, string> };
  spec?: { suspend?: boolean };
  status?: { conditions?: Condition[]; lastHandledReconcileAt?: string; observedGeneration?: number };
};

export function findKind(name: string): KindDefinition {
  const n = name.toLowerCase();
  const def = ALL_KINDS.find(
    (k) =>
      k.kind.toLowerCase() === n ||
      k.plural === n ||
      k.singular === n ||
      (k.shortNames ?? []).includes(n) ||
      `${k.plural}.${k.group}` === n,
  );
  if (!def) throw new UsageError(`unknown kind "${name}"; known kinds: ${ALL_KINDS.map((k) => k.singular).join(', ')}`);
  return def;
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      kubeconfig: { type: 'string' },
      timeout: { type: 'string', default: '5m' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, kindName, name] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'version') {
    process.stdout.write(`tide ${pkg.version}\n`);
    return 0;
  }
  if (!['reconcile', 'suspend', 'resume'].includes(command)) throw new UsageError(`unknown command "${command}"`);
  if (!kindName || !name) throw new UsageError(`${command} needs a kind and a name`);
  const def = findKind(kindName);
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const timeoutMs = parseDuration(values.timeout!);
  const api = shareConnections(kc).makeApiClient(CustomObjectsApi);
  const ref = { group: def.group, version: def.version, plural: def.plural, namespace, name };
  const what = `${def.kind} ${namespace}/${name}`;
  const merge = (body: object) =>
    api.patchNamespacedCustomObject({ ...ref, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

  if (command === 'suspend') {
    await merge({ spec: { suspend: true } });
    process.stdout.write(`► suspended ${what}\n`);
    return 0;
  }
  if (command === 'resume') {
    await merge({ spec: { suspend: null } });
    process.stdout.write(`► resumed ${what}\n`);
  }
  const current = (await api.getNamespacedCustomObject(ref)) as Obj;
  if (current.spec?.suspend)
    throw new Error(`${what} is suspended; run tide resume ${def.singular} ${name} -n ${namespace}`);
  const requestedAt = new Date().toISOString();
  await merge({ metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: requestedAt } } });
  process.stdout.write(`► annotating ${what} with ${REQUESTED_AT_ANNOTATION}\n◎ waiting for reconciliation\n`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const obj = (await api.getNamespacedCustomObject(ref)) as Obj;
    const ready = findCondition(obj.status?.conditions, 'Ready');
    if (
      obj.status?.lastHandledReconcileAt === requestedAt &&
      ready &&
      ready.observedGeneration === obj.metadata?.generation
    ) {
      if (ready.status === 'True') {
        process.stdout.write(`✔ ${what} reconciled: ${ready.message}\n`);
        return 0;
      }
      process.stderr.write(`✗ ${what} not ready: ${ready.reason}: ${ready.message}\n`);
      return 1;
    }
    if (Date.now() > deadline) {
      process.stderr.write(
        `✗ timed out after ${values.timeout} waiting for ${what} to handle the request; is the controller running?\n`,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const usage =
    err instanceof UsageError || String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`✗ ${apiMessage(err)}\n${usage ? USAGE : ''}`);
  process.exitCode = usage ? 2 : 1;
}

/** The API server's own message when there is one (e.g. '… "app" not found'), else the error's. */
function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON: fall through to the error's message
    }
  }
  return errorMessage(err);
}
