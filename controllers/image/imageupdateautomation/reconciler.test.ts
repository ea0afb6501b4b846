import type { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { findCondition } from '../../runtime/conditions.ts';
import type { Informer } from '../../runtime/informer.ts';
import { applyOutcome, type Outcome } from '../../runtime/outcome.ts';
import { testContext } from '../../runtime/test-context.ts';
import type { ImagePolicy } from '../imagepolicy/reconciler.ts';
import type { UpdateResult } from '../update/files.ts';
import type { AutomationGitResult, AutomationGitRun } from '../update/repository.ts';
import { renderCommitMessage } from '../update/template.ts';
import { type ImageUpdateAutomation, ImageUpdateAutomationReconciler, templateData } from './reconciler.ts';

const source = {
  metadata: { name: 'fleet', namespace: 'apps' },
  spec: { url: 'https://git.example/fleet.git', interval: '1m', ref: { branch: 'main' } },
};

function imagePolicy(name: string, opts: { labels?: Record<string, string>; suspend?: boolean; tag?: string } = {}) {
  return {
    metadata: { name, namespace: 'apps', labels: opts.labels ?? {} },
    spec: {
      imageRepositoryRef: { name },
      policy: { semver: { range: '*' } },
      ...(opts.suspend ? { suspend: true } : {}),
    },
    ...(opts.tag === undefined ? {} : { status: { latestRef: { name: `registry.example/${name}`, tag: opts.tag } } }),
  } as ImagePolicy;
}

function automation(spec: Partial<ImageUpdateAutomation['spec']> = {}, status?: ImageUpdateAutomation['status']) {
  return {
    metadata: { name: 'auto', namespace: 'apps', generation: 2 },
    spec: {
      sourceRef: { kind: 'GitRepository', name: 'fleet' },
      interval: '5m',
      git: { commit: { author: { name: 'Bot', email: 'bot@example.com' } } },
      ...spec,
    },
    ...(status ? { status } : {}),
  } as ImageUpdateAutomation;
}

const emptyUpdate: UpdateResult = { updated: [], skipped: [], invalid: [] };

describe('ImageUpdateAutomationReconciler', () => {
  let policies: ImagePolicy[];
  let runs: AutomationGitRun[];
  let answer: (run: AutomationGitRun) => Promise<AutomationGitResult>;

  beforeEach(() => {
    policies = [
      imagePolicy('web', { labels: { app: 'web' }, tag: '1.2.4' }),
      imagePolicy('api', { labels: { app: 'api' }, tag: '2.0.1' }),
      imagePolicy('paused', { labels: { app: 'web' }, tag: '9.9.9', suspend: true }),
      imagePolicy('pending', { labels: { app: 'web' } }),
    ];
    runs = [];
    answer = async () => ({ kind: 'unchanged', sourceRevision: 'main@sha1:abc', update: emptyUpdate });
  });

  const reconciler = () =>
    new ImageUpdateAutomationReconciler({
      kubeConfig: {} as KubeConfig,
      gitRepositories: { get: (k: string) => (k === 'apps/fleet' ? source : undefined) } as never,
      policies: {
        byIndex: (_index: string, ns: string) => policies.filter((p) => p.metadata?.namespace === ns),
        get: (k: string) => policies.find((p) => `${p.metadata?.namespace}/${p.metadata?.name}` === k),
      } as unknown as Informer<ImagePolicy>,
      requeueDependencyMs: 1000,
      access: async () => ({ creds: { username: 'u', password: 'p' }, options: { timeoutMs: 1000 } }),
      git: (run) => {
        runs.push(run);
        return answer(run);
      },
    });

  async function reconcile(
    obj: ImageUpdateAutomation,
  ): Promise<{ outcome: Outcome; ctx: ReturnType<typeof testContext> }> {
    const ctx = testContext(obj);
    const outcome = await reconciler().reconcile(obj, ctx);
    return { outcome, ctx };
  }

  it('hands the git work the selected, unsuspended policies with a latest image, and records a push', async () => {
    answer = async (run) => ({
      kind: 'pushed',
      sourceRevision: 'main@sha1:def',
      commit: 'def0123456789',
      refs: ['refs/heads/main'],
      update: emptyUpdate,
      attempts: 1,
      message: run.message(emptyUpdate),
    });
    const { outcome, ctx } = await reconcile(automation({ policySelector: { matchLabels: { app: 'web' } } }));
    expect(outcome).to.deep.include({ type: 'success', message: "pushed commit 'def0123' to 'main'" });
    expect(outcome.requeueAfterMs).to.equal(5 * 60_000);
    expect([...runs[0]!.policies.entries()]).to.deep.equal([
      ['apps:web', { image: 'registry.example/web', tag: '1.2.4' }],
    ]);
    expect(runs[0]!).to.deep.include({ url: source.spec.url, checkoutRef: { branch: 'main' }, updatePath: undefined });
    expect(ctx.status).to.deep.include({
      lastPushCommit: 'def0123456789',
      lastPushTime: '2026-01-01T00:00:00Z',
      lastAutomationRunTime: '2026-01-01T00:00:00Z',
      observedSourceRevision: 'main@sha1:def',
      observedPolicies: { web: { name: 'registry.example/web', tag: '1.2.4' } },
    });
    expect(ctx.events).to.deep.equal([
      "Succeeded: pushed commit 'def0123456789' to 'main'\nUpdate from image update automation",
    ]);
  });

  it('is up to date only for the same revision, generation and policy images', async () => {
    const observed = {
      observedSourceRevision: 'main@sha1:abc',
      observedGeneration: 2,
      observedPolicies: {
        web: { name: 'registry.example/web', tag: '1.2.4' },
        api: { name: 'registry.example/api', tag: '2.0.1' },
      },
    };
    await reconcile(automation({}, observed));
    const upToDate = runs[0]!.upToDate!;
    expect(upToDate('main@sha1:abc')).to.equal(true);
    expect(upToDate('main@sha1:new')).to.equal(false);
    await reconcile(automation({}, { ...observed, observedGeneration: 1 }));
    expect(runs[1]!.upToDate!('main@sha1:abc')).to.equal(false);
    policies[0] = imagePolicy('web', { labels: { app: 'web' }, tag: '1.2.5' });
    await reconcile(automation({}, observed));
    expect(runs[2]!.upToDate!('main@sha1:abc')).to.equal(false);
  });

  it('commits nothing for a marker naming a missing policy of its namespace, or a file that is not YAML', async () => {
    await reconcile(automation());
    const check = runs[0]!.check!;
    const skipped = (marker: string): UpdateResult => ({
      ...emptyUpdate,
      skipped: [{ path: 'deploy/a.yaml', line: 3, marker, reason: 'no-policy' }],
    });
    expect(() => check(skipped('apps:wbe'))).to.throw(
      "failed to apply policies: deploy/a.yaml line 3 names ImagePolicy 'apps:wbe', which does not exist",
    );
    // Another namespace's marker (another team's automation), or a policy this one does not select: left alone.
    expect(() => check(skipped('other:web'))).to.not.throw();
    expect(() => check(skipped('apps:api'))).to.not.throw();
    expect(() => check({ ...emptyUpdate, invalid: [{ path: 'x.yaml', message: 'line 1, column 2: bad' }] })).to.throw(
      'failed to apply policies: not valid YAML: x.yaml: line 1, column 2: bad',
    );
  });

  it('stalls on what retrying cannot fix, before any git work', async () => {
    const cases: [Partial<ImageUpdateAutomation['spec']>, string, RegExp][] = [
      [
        { policySelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } },
        'InvalidPolicySelector',
        /^invalid spec.policySelector: matchExpressions\[0\] \(key 'a'\): operator In needs values$/,
      ],
      [
        { git: { commit: { author: { email: 'b@example.com' }, messageTemplate: '{{ .Changed' } } },
        'InvalidSourceConfiguration',
        /^spec\.git\.commit\.messageTemplate: template: commit:1: /,
      ],
      [
        { git: { commit: { author: { email: 'b@example.com' }, messageTemplate: '{{ .Updated }}' } } },
        'RemovedTemplateField',
        /removed '\.Updated' field/,
      ],
      [
        { git: { commit: { author: { email: 'b@example.com' } }, push: { refspec: 'main' } } },
        'InvalidSourceConfiguration',
        /is not of the form <src>:<dst>/,
      ],
      [{ git: undefined }, 'InvalidSourceConfiguration', /spec\.git is required/],
    ];
    for (const [spec, reason, message] of cases) {
      const obj = automation(spec);
      const { outcome, ctx } = await reconcile(obj);
      expect(outcome, reason).to.include({ type: 'stalled', reason });
      expect(outcome.message).to.match(message);
      const status = applyOutcome(ctx.status, outcome, 2, ctx.now());
      expect(findCondition(status.conditions, 'Stalled')).to.include({ status: 'True', reason });
    }
    expect(runs).to.have.length(0);
  });

  it('waits for a GitRepository that does not exist', async () => {
    const { outcome } = await reconcile(automation({ sourceRef: { kind: 'GitRepository', name: 'gone' } }));
    expect(outcome).to.include({
      type: 'waiting',
      reason: 'DependencyNotReady',
      message: 'referenced GitRepository does not exist: GitRepository/apps/gone not found',
    });
  });

  it('gives the template the changes grouped by file and object', () => {
    const object = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'apps' };
    const update: UpdateResult = {
      ...emptyUpdate,
      updated: [
        {
          path: 'deploy/web.yaml',
          changes: [
            { line: 3, marker: 'apps:web', from: 'web:1', to: 'web:2', object },
            { line: 9, marker: 'apps:web:tag', from: '1', to: '2', object },
          ],
        },
      ],
    };
    const data = templateData(automation(), update, { env: 'prod' });
    const message = renderCommitMessage(
      '{{ range $r, $c := .Changed.Objects }}{{ $r.Kind }}/{{ $r.Name }}:{{ range $c }} {{ .Setter }}' +
        '={{ .NewValue }}{{ end }}{{ end }} {{ .Values.env }} {{ .AutomationObject }}',
      data,
    );
    expect(message).to.equal('Deployment/web: apps:web=web:2 apps:web:tag=2 prod apps/auto');
  });
});
