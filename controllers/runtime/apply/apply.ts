// Server-side apply of a set of objects, in stages, validated before anything is written.
//
// Per object: one GET and one dry-run apply decide the action; the real apply is sent only when
// the dry-run result differs from the live object (or our field ownership would change), so an
// unchanged object costs two reads and no write, and its resourceVersion stays put. The dry-run
// is the server's own answer (defaults, admission, conversion), so no schema knowledge is needed
// here to tell a real change from a defaulted field.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Action, ChangeSet, ChangeSetEntry } from './changeset.ts';
import { apiClientFor, type LiveObject } from './client.ts';
import { DEFAULT_CONCURRENCY, mapLimit } from './concurrency.ts';
import { KUBECTL_MANAGERS, type FieldManagerRef } from './drift.ts';
import { ApplyError, reasonOf, ValidationError } from './errors.ts';
import type { IgnoreRules } from './ignore.ts';
import { objectHealth } from './kstatus.ts';
import { isCRD, isNamespace, STAGES } from './order.ts';
import { plan, prepare, type Item, type Outcome, type Plan, type Planner } from './plan.ts';
import { applyPolicy, DEFAULT_ANNOTATION_DOMAIN } from './policy.ts';
import { statusCode } from '../api-errors.ts';

export interface ApplyOptions {
  /** Owner of the applied fields, e.g. `kustomize-controller`. */
  fieldManager: string;
  /** Recreate objects whose change touches an immutable field (also per object: `<domain>/force: enabled`). */
  force?: boolean;
  /** Validate and compute the change set; write nothing. */
  dryRun?: boolean;
  /** Managers whose fields an Override apply takes over (and so removes when undeclared). */
  takeOver?: readonly FieldManagerRef[];
  /** Domain of the ssa/force/reconcile annotations. */
  annotationDomain?: string;
  /** Drift ignore rules (compileIgnoreRules): ignored paths keep their live values. */
  ignore?: IgnoreRules;
  /** How long to wait for new CRDs to be established and recreated objects to be gone. */
  waitTimeoutMs?: number;
  concurrency?: number;
}

interface Run {
  planner: Planner;
  dryRun: boolean;
  waitTimeoutMs: number;
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`timeout after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`);
    await sleep(Math.min(500, Math.max(deadline - Date.now(), 0)));
  }
}

/** Writes one planned object; returns the server's answer. */
async function execute(run: Run, p: Plan): Promise<LiveObject> {
  const { client, fieldManager } = run.planner;
  const { item } = p;
  const res = item.res!;
  if (p.recreate) {
    const uid = p.live?.metadata?.uid;
    try {
      await client.delete(res, item.ref, uid);
    } catch (err) {
      // 409: the uid precondition failed, so the object was already replaced.
      if (statusCode(err) !== 409) throw err;
    }
    await waitUntil(
      'the old object to be deleted',
      run.waitTimeoutMs,
      async () => (await client.get(res, item.ref))?.metadata?.uid !== uid,
    );
  } else if (p.takeOver) {
    // No resourceVersion precondition: controllers write status all the time, and an entry lost
    // to a race only leaves its fields unowned, which no apply removes.
    await client.jsonPatch(
      res,
      item.ref,
      [{ op: 'replace', path: '/metadata/managedFields', value: p.takeOver }],
      fieldManager,
    );
  }
  return client.apply(res, p.applied ?? item.obj, { fieldManager, force: true });
}

async function waitForCRDs(run: Run, plans: Plan[], changeSet: ChangeSet): Promise<void> {
  const crds = plans.filter((p) => isCRD(p.item.ref) && p.action !== 'skipped');
  await mapLimit(crds, run.planner.concurrency, async (p) => {
    if (p.action === 'unchanged' && p.live && objectHealth(p.live).state === 'ready') return;
    let last = 'not found';
    try {
      await waitUntil('it to be established', run.waitTimeoutMs, async () => {
        const live = await run.planner.client.get(p.item.res!, p.item.ref);
        const health = live ? objectHealth(live) : { state: 'pending', message: 'not found' };
        last = health.message;
        if (health.state === 'failed') throw new Error(health.message);
        return health.state === 'ready';
      });
    } catch (err) {
      throw new ApplyError(p.item.subject, `${reasonOf(err)} (${last})`, changeSet);
    }
  });
}

/** What to do with objects that could only be validated after a definition of this set. */
function dryRunGuess(run: Run, item: Item, live: LiveObject | undefined): Plan {
  // Nothing was written, so what a definition of this set enables cannot be checked yet.
  const policy = applyPolicy(item.obj, live, run.planner.annotationDomain);
  const action: Action = policy.skip || (policy.ifNotPresent && live) ? 'skipped' : live ? 'configured' : 'created';
  return { item, action, live };
}

function entryOfPlan(p: Plan, object: KubernetesObject | undefined = p.live): ChangeSetEntry {
  return { id: p.item.id, version: p.item.ref.version, subject: p.item.subject, action: p.action, object };
}

/**
 * Applies `objects` with server-side apply as `opts.fieldManager`, forcing conflicts (fields of
 * other managers that the manifests declare are taken over). Stages: CRDs, Namespaces and
 * ClusterRoles; then *Class kinds; then the rest, each stage after the CRDs of the first are
 * established. Every object is validated with a server-side dry-run before the first write; an
 * invalid object fails the call with a ValidationError naming it and nothing is written. Only
 * objects that depend on a definition in the same set (a new CRD or Namespace) cannot be checked
 * before that definition exists; they are validated before their own stage is written.
 */
export async function applyAll(
  kc: KubeConfig,
  objects: readonly KubernetesObject[],
  opts: ApplyOptions,
): Promise<ChangeSet> {
  const run: Run = {
    planner: {
      client: apiClientFor(kc),
      fieldManager: opts.fieldManager,
      force: opts.force ?? false,
      takeOver: opts.takeOver ?? KUBECTL_MANAGERS,
      annotationDomain: opts.annotationDomain ?? DEFAULT_ANNOTATION_DOMAIN,
      concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
      ignore: opts.ignore,
    },
    dryRun: opts.dryRun ?? false,
    waitTimeoutMs: opts.waitTimeoutMs ?? 60_000,
  };
  const { planner } = run;
  const { items, failures } = await prepare(planner, objects);

  // The definitions first: what they create tells which objects cannot be checked yet. Kinds not
  // served yet belong to a CRD of this set, objects in a Namespace of this set that does not exist
  // yet can only fail: nothing to ask the server about them now.
  const definitions = items.filter((i) => i.stage === 0);
  const defined = await mapLimit(definitions, planner.concurrency, (item) =>
    item.res ? plan(planner, item) : Promise.resolve(undefined),
  );
  const newNamespaces = new Set(
    defined.flatMap((o, i) =>
      o && 'plan' in o && isNamespace(definitions[i]!.ref) && o.plan.action === 'created'
        ? [definitions[i]!.ref.name]
        : [],
    ),
  );
  const others = items.filter((i) => i.stage !== 0);
  const checkable = (item: Item) => item.res !== undefined && !newNamespaces.has(item.ref.namespace);
  const planned = await mapLimit(others, planner.concurrency, (item) =>
    checkable(item) ? plan(planner, item) : Promise.resolve(undefined),
  );
  const outcomeOf = new Map<Item, Outcome | undefined>([
    ...definitions.map((d, i) => [d, defined[i]] as const),
    ...others.map((o, i) => [o, planned[i]] as const),
  ]);
  const outcomes = items.map((i) => outcomeOf.get(i));
  const plans = new Map<Item, Plan>();
  const deferred = new Map<Item, LiveObject | undefined>();
  for (const [i, o] of outcomes.entries()) {
    const item = items[i]!;
    if (o && 'plan' in o) plans.set(item, o.plan);
    else if (!o || item.definedBySet || newNamespaces.has(item.ref.namespace)) deferred.set(item, o?.live);
    else failures.push(o.failure);
  }
  if (failures.length > 0) throw new ValidationError(failures, []);

  const changeSet: ChangeSet = [];
  let wrote = false;
  for (let stage = 0; stage < STAGES; stage++) {
    const stageItems = items.filter((i) => i.stage === stage);
    // A definition written in an earlier stage (a CRD's schema, a ClusterRole a binding refers
    // to) can change any later answer; a new Namespace only those of its objects, deferred above.
    const stale = stageItems.filter((i) => deferred.has(i) || wrote);
    if (run.dryRun) {
      for (const item of stale) plans.set(item, dryRunGuess(run, item, deferred.get(item)));
    } else if (stale.length > 0) {
      const again = await mapLimit(stale, planner.concurrency, (item) => plan(planner, item));
      const stageFailures = again.flatMap((o) => ('failure' in o ? [o.failure] : []));
      if (stageFailures.length > 0) throw new ValidationError(stageFailures, changeSet);
      for (const o of again) if ('plan' in o) plans.set(o.plan.item, o.plan);
    }
    const stagePlans = stageItems.map((i) => plans.get(i)!);
    // The objects of one stage do not depend on each other: they are written concurrently.
    const written = await mapLimit(stagePlans, planner.concurrency, async (p) => {
      if (run.dryRun || (p.action !== 'created' && p.action !== 'configured')) return { entry: entryOfPlan(p) };
      try {
        return { entry: entryOfPlan(p, await execute(run, p)) };
      } catch (err) {
        return { entry: entryOfPlan(p), error: err };
      }
    });
    const failure = written.find((w) => 'error' in w);
    changeSet.push(...written.filter((w) => !('error' in w)).map((w) => w.entry));
    if (failure) throw new ApplyError(failure.entry.subject, `apply failed: ${reasonOf(failure.error)}`, changeSet);
    wrote ||= stagePlans.some(
      (p) => !run.dryRun && (p.action === 'created' || p.action === 'configured') && !isNamespace(p.item.ref),
    );
    if (stage === 0 && !run.dryRun) await waitForCRDs(run, stagePlans, changeSet);
  }
  return changeSet;
}
