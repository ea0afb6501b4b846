import { parse } from '@marcbachmann/cel-js';
import { expect } from 'chai';
import { crdManifest } from '../crd.ts';
import type { KindDefinition } from '../kind.ts';
import { structural } from '../schema.ts';
import { checkSpec } from '../validate.ts';
import { type ImagePolicySpec, ImagePolicyKind } from './imagepolicy.ts';
import { type ImageRepositorySpec, ImageRepositoryKind } from './imagerepository.ts';
import { type ImageUpdateAutomationSpec, ImageUpdateAutomationKind } from './imageupdateautomation.ts';

type Json = Record<string, unknown>;

/** Messages of the x-kubernetes-validations rules the value breaks, each rule bound to its schema node. */
function celViolations(schema: Json, value: unknown): string[] {
  const out: string[] = [];
  const rules = (schema['x-kubernetes-validations'] ?? []) as { rule: string; message: string }[];
  for (const { rule, message } of rules) if (parse(rule)({ self: value }) !== true) out.push(message);
  const properties = schema.properties as Record<string, Json> | undefined;
  if (properties && typeof value === 'object' && value !== null) {
    for (const [key, sub] of Object.entries(properties)) {
      if (key in value) out.push(...celViolations(sub, (value as Json)[key]));
    }
  }
  if (schema.items && Array.isArray(value)) for (const v of value) out.push(...celViolations(schema.items as Json, v));
  return out;
}

/** Schema errors, then CEL violations, as the API server would report them after defaulting. */
function admit<T>(def: KindDefinition, spec: unknown): { spec: T; errors: string[] } {
  const checked = checkSpec<T>(def, spec);
  if (checked.errors.length > 0) return checked;
  return { spec: checked.spec, errors: celViolations(structural(def.spec), checked.spec) };
}

const ready = '.status.conditions[?(@.type=="Ready")]';
const fields = (s: Json) => Object.keys((s.properties ?? {}) as Json).sort();
const columns = (def: KindDefinition) =>
  crdManifest(def).spec.versions[0]!.additionalPrinterColumns.map(
    (c) => `${c.name}=${c.jsonPath}${c.priority ? `@${c.priority}` : ''}`,
  );

describe('image.toolkit.fluxcd.io/v1 CRD presentation', () => {
  it('names, short names, categories and status defaults are Flux’s', () => {
    const cases: [KindDefinition, string, string[]][] = [
      [ImageRepositoryKind, 'imagerepositories', ['imgrepo', 'imagerepo']],
      [ImagePolicyKind, 'imagepolicies', ['imgpol', 'imagepol']],
      [ImageUpdateAutomationKind, 'imageupdateautomations', ['iua', 'imgupd', 'imgauto']],
    ];
    for (const [def, plural, shortNames] of cases) {
      const crd = crdManifest(def);
      expect(crd.metadata.name).to.equal(`${plural}.image.toolkit.fluxcd.io`);
      expect(crd.spec.names).to.deep.include({ plural, shortNames, categories: ['all', 'fluxcd', 'fluxcd-images'] });
      const version = crd.spec.versions[0]!;
      expect(version.name).to.equal('v1');
      const schema = version.schema.openAPIV3Schema as { properties: { status: { default: unknown } } };
      expect(schema.properties.status.default).to.deep.equal({ observedGeneration: -1 });
    }
    expect(crdManifest(ImageUpdateAutomationKind).metadata.annotations).to.deep.equal({
      'kustomize.toolkit.fluxcd.io/substitute': 'disabled',
    });
  });

  it('printer columns are Flux’s, in Flux’s order', () => {
    expect(columns(ImageRepositoryKind)).to.deep.equal([
      'Image=.spec.image',
      'Tags=.status.lastScanResult.tagCount',
      `Ready=${ready}.status`,
      `Status=${ready}.message`,
      'Last scan=.status.lastScanResult.scanTime@1',
      'Age=.metadata.creationTimestamp',
    ]);
    expect(columns(ImagePolicyKind)).to.deep.equal([
      'Image=.status.latestRef.name',
      'Tag=.status.latestRef.tag',
      `Ready=${ready}.status`,
      `Status=${ready}.message`,
      'Age=.metadata.creationTimestamp',
    ]);
    expect(columns(ImageUpdateAutomationKind)).to.deep.equal([
      `Ready=${ready}.status`,
      `Status=${ready}.message`,
      'Last run=.status.lastAutomationRunTime@1',
      'Age=.metadata.creationTimestamp',
    ]);
  });

  it('specs and statuses carry Flux’s fields', () => {
    expect(fields(structural(ImageRepositoryKind.spec))).to.deep.equal(
      [
        'accessFrom',
        'certSecretRef',
        'exclusionList',
        'image',
        'insecure',
        'interval',
        'provider',
        'proxySecretRef',
        'secretRef',
        'serviceAccountName',
        'suspend',
        'timeout',
      ].sort(),
    );
    const repoStatus = structural(ImageRepositoryKind.status);
    expect(fields(repoStatus)).to.deep.equal(
      [
        'canonicalImageName',
        'conditions',
        'lastHandledReconcileAt',
        'lastScanResult',
        'observedExclusionList',
        'observedGeneration',
      ].sort(),
    );
    const scan = (repoStatus.properties as Record<string, Json>).lastScanResult!;
    expect(fields(scan)).to.deep.equal(['latestTags', 'revision', 'scanTime', 'tagCount']);
    expect(scan.required).to.deep.equal(['tagCount']);

    expect(fields(structural(ImagePolicyKind.spec))).to.deep.equal(
      ['digestReflectionPolicy', 'filterTags', 'imageRepositoryRef', 'interval', 'policy', 'suspend'].sort(),
    );
    expect(fields(structural(ImagePolicyKind.status))).to.deep.equal(
      ['conditions', 'lastHandledReconcileAt', 'latestRef', 'observedGeneration', 'observedPreviousRef'].sort(),
    );

    const iua = structural(ImageUpdateAutomationKind.spec);
    expect(fields(iua)).to.deep.equal(['git', 'interval', 'policySelector', 'sourceRef', 'suspend', 'update'].sort());
    expect(iua.required).to.deep.equal(['sourceRef', 'interval']);
    const git = (iua.properties as Record<string, Json>).git!;
    expect(fields(git)).to.deep.equal(['checkout', 'commit', 'push']);
    const commit = (git.properties as Record<string, Json>).commit!;
    expect(fields(commit)).to.deep.equal(['author', 'messageTemplate', 'messageTemplateValues', 'signingKey']);
    const iuaStatus = structural(ImageUpdateAutomationKind.status);
    expect(fields(iuaStatus)).to.deep.equal(
      [
        'conditions',
        'lastAutomationRunTime',
        'lastHandledReconcileAt',
        'lastPushCommit',
        'lastPushTime',
        'observedGeneration',
        'observedPolicies',
        'observedSourceRevision',
      ].sort(),
    );
    const policies = (iuaStatus.properties as Record<string, Json>).observedPolicies!;
    expect(policies.type).to.equal('object');
    expect((policies.additionalProperties as Json).required).to.deep.equal(['name', 'tag']);
  });
});

describe('image.toolkit.fluxcd.io/v1 ImageRepository', () => {
  it('the docs example validates and gets Flux’s defaults', () => {
    const { spec, errors } = admit<ImageRepositorySpec>(ImageRepositoryKind, {
      image: 'ghcr.io/stefanprodan/podinfo',
      interval: '5m0s',
    });
    expect(errors).to.deep.equal([]);
    expect(spec.exclusionList).to.deep.equal(['^.*\\.sig$']);
    expect(spec.provider).to.equal('generic');
    expect(spec.timeout).to.equal(undefined);
  });

  it('accepts every optional field', () => {
    const { errors } = admit(ImageRepositoryKind, {
      image: 'registry.example.com/team/app',
      interval: '1h',
      timeout: '1m30s',
      secretRef: { name: 'regcred' },
      proxySecretRef: { name: 'proxy' },
      certSecretRef: { name: 'tls' },
      serviceAccountName: 'puller',
      accessFrom: { namespaceSelectors: [{ matchLabels: { 'kubernetes.io/metadata.name': 'apps' } }, {}] },
      exclusionList: ['^.*\\.sig$', '^sha256-'],
      provider: 'aws',
      insecure: true,
      suspend: false,
    });
    expect(errors).to.deep.equal([]);
  });

  it('names the invalid fields', () => {
    const { errors } = admit(ImageRepositoryKind, {
      interval: '5m',
      timeout: '1h',
      provider: 'github',
      accessFrom: {},
      exclusionList: Array.from({ length: 26 }, (_, i) => `x${i}`),
      serviceAccountName: 'a'.repeat(254),
    });
    const text = errors.join('\n');
    expect(errors).to.include('spec.image: required');
    expect(errors).to.include('spec.accessFrom.namespaceSelectors: required');
    expect(text)
      .to.match(/spec\.timeout: must match pattern/)
      .and.match(/spec\.provider: must be one of generic, aws, azure, gcp/)
      .and.match(/spec\.exclusionList: must NOT have more than 25 items/)
      .and.match(/spec\.serviceAccountName: must NOT have more than 253 characters/);
  });
});

describe('image.toolkit.fluxcd.io/v1 ImagePolicy', () => {
  const ref = { imageRepositoryRef: { name: 'podinfo' } };

  it('the docs examples validate and get Flux’s defaults', () => {
    const examples = [
      { ...ref, digestReflectionPolicy: 'IfNotPresent', policy: { semver: { range: '5.1.x' } } },
      { imageRepositoryRef: { name: 'podinfo', namespace: 'flux-system' }, policy: { semver: { range: '>=1.0.0' } } },
      { ...ref, policy: { alphabetical: { order: 'asc' } } },
      { ...ref, policy: { numerical: { order: 'asc' } } },
      { ...ref, filterTags: { pattern: '.*-rc.*' }, policy: { semver: { range: '^1.x-0' } } },
      {
        imageRepositoryRef: { name: 'minio' },
        filterTags: { pattern: '^RELEASE\\.(?P<timestamp>.*)Z$', extract: '$timestamp' },
        policy: { alphabetical: { order: 'asc' } },
      },
      { ...ref, digestReflectionPolicy: 'Always', interval: '10m', policy: { semver: { range: '>=1.0.0' } } },
    ];
    for (const example of examples) expect(admit(ImagePolicyKind, example).errors).to.deep.equal([]);

    const { spec } = admit<ImagePolicySpec>(ImagePolicyKind, { ...ref, policy: { alphabetical: {}, numerical: {} } });
    expect(spec.digestReflectionPolicy).to.equal('Never');
    expect(spec.policy.alphabetical?.order).to.equal('asc');
    expect(spec.policy.numerical?.order).to.equal('asc');
  });

  it('names the invalid fields', () => {
    expect(admit(ImagePolicyKind, {}).errors).to.include.members([
      'spec.imageRepositoryRef: required',
      'spec.policy: required',
    ]);
    const { errors } = admit(ImagePolicyKind, {
      ...ref,
      digestReflectionPolicy: 'Sometimes',
      policy: { semver: {}, alphabetical: { order: 'up' }, numerical: { order: 'down' } },
    });
    expect(errors).to.include.members([
      'spec.policy.semver.range: required',
      'spec.policy.alphabetical.order: must be one of asc, desc',
      'spec.policy.numerical.order: must be one of asc, desc',
      'spec.digestReflectionPolicy: must be one of Always, IfNotPresent, Never',
    ]);
  });

  it('keeps Flux’s rules tying interval to digestReflectionPolicy Always', () => {
    expect(
      admit(ImagePolicyKind, { ...ref, interval: '5m', policy: { semver: { range: '1.x' } } }).errors,
    ).to.deep.equal(["spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'"]);
    expect(
      admit(ImagePolicyKind, { ...ref, digestReflectionPolicy: 'Always', policy: { semver: { range: '1.x' } } }).errors,
    ).to.deep.equal(["spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'"]);
  });

  it('like Flux’s schema, leaves an empty policy choice to the controller', () => {
    // Flux's CRD has no rule requiring one of semver, alphabetical, numerical; the controller rejects it.
    expect(admit(ImagePolicyKind, { ...ref, policy: {} }).errors).to.deep.equal([]);
  });
});

describe('image.toolkit.fluxcd.io/v1 ImageUpdateAutomation', () => {
  const docsExample = {
    interval: '30m',
    sourceRef: { kind: 'GitRepository', name: 'podinfo' },
    git: {
      commit: { author: { email: 'fluxcdbot@users.noreply.github.com', name: 'fluxcdbot' } },
      push: { branch: 'main' },
    },
    update: { path: './' },
  };

  it('the docs example validates and gets Flux’s defaults', () => {
    const { spec, errors } = admit<ImageUpdateAutomationSpec>(ImageUpdateAutomationKind, docsExample);
    expect(errors).to.deep.equal([]);
    expect(spec.update).to.deep.equal({ path: './', strategy: 'Setters' });

    const bare = admit<ImageUpdateAutomationSpec>(ImageUpdateAutomationKind, {
      interval: '1h',
      sourceRef: { name: 'podinfo' },
    });
    expect(bare.errors).to.deep.equal([]);
    expect(bare.spec.sourceRef.kind).to.equal('GitRepository');
    expect(bare.spec.update).to.deep.equal({ strategy: 'Setters' });
  });

  it('accepts the other documented settings', () => {
    const { errors } = admit(ImageUpdateAutomationKind, {
      ...docsExample,
      sourceRef: { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', name: 'p', namespace: 'x' },
      git: {
        checkout: { ref: { branch: 'main' } },
        commit: {
          author: { email: 'bot@example.com' },
          signingKey: { type: 'ssh', secretRef: { name: 'signing-key' } },
          messageTemplate: 'Automated image update by Flux for cluster {{ .Values.cluster }}.',
          messageTemplateValues: { cluster: 'prod' },
        },
        push: {
          branch: 'dev',
          refspec: 'refs/heads/main:refs/heads/auto',
          options: { 'merge_request.create': '', 'merge_request.target': 'release' },
        },
      },
      policySelector: {
        matchLabels: { 'app.kubernetes.io/instance': 'my-app' },
        matchExpressions: [{ key: 'app.kubernetes.io/component', operator: 'In', values: ['a', 'b'] }],
      },
      suspend: true,
    });
    expect(errors).to.deep.equal([]);
  });

  it('names the invalid fields', () => {
    expect(admit(ImageUpdateAutomationKind, {}).errors).to.include.members([
      'spec.sourceRef: required',
      'spec.interval: required',
    ]);
    const { errors } = admit(ImageUpdateAutomationKind, {
      interval: '30m',
      sourceRef: { kind: 'OCIRepository', name: 'x' },
      git: {
        checkout: {},
        commit: { author: { name: 'bot' }, signingKey: { type: 'x509', secretRef: { name: 'k' } } },
        push: { refspec: '+refs/heads/main:refs/heads/auto' },
      },
      update: { strategy: 'Regex' },
    });
    expect(errors).to.include.members([
      'spec.sourceRef.kind: must be one of GitRepository',
      'spec.git.checkout.ref: required',
      'spec.git.commit.author.email: required',
      'spec.git.commit.signingKey.type: must be one of gpg, ssh',
      'spec.update.strategy: must be one of Setters',
    ]);
    expect(errors.join('\n')).to.match(/spec\.git\.push\.refspec: must match pattern/);
    const deletion = admit(ImageUpdateAutomationKind, {
      ...docsExample,
      git: { ...docsExample.git, push: { refspec: ':refs/heads/x' } },
    });
    expect(deletion.errors.join('\n')).to.match(/spec\.git\.push\.refspec: must match pattern/);
    expect(admit(ImageUpdateAutomationKind, { ...docsExample, git: {} }).errors).to.deep.equal([
      'spec.git.commit: required',
    ]);
  });
});
