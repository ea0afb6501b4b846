import { parse } from '@marcbachmann/cel-js';
import { expect } from 'chai';
import { crdManifest } from '../crd.ts';
import type { KindDefinition } from '../kind.ts';
import { structural } from '../schema.ts';
import { checkSpec } from '../validate.ts';
import { type HelmReleaseSpec, HelmReleaseKind } from './helmrelease.ts';

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
function admit(spec: unknown): { spec: HelmReleaseSpec; errors: string[] } {
  const checked = checkSpec<HelmReleaseSpec>(HelmReleaseKind, spec);
  if (checked.errors.length > 0) return checked;
  return { spec: checked.spec, errors: celViolations(structural(HelmReleaseKind.spec), checked.spec) };
}

/** The HelmRelease of the example at the top of Flux's HelmRelease spec document. */
const podinfo = {
  interval: '10m',
  timeout: '5m',
  chart: {
    spec: {
      chart: 'podinfo',
      version: '6.5.*',
      sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
      interval: '5m',
    },
  },
  releaseName: 'podinfo',
  install: { remediation: { retries: 3 } },
  upgrade: { remediation: { retries: 3 } },
  test: { enable: true },
  driftDetection: { mode: 'enabled', ignore: [{ paths: ['/spec/replicas'], target: { kind: 'Deployment' } }] },
  values: { replicaCount: 2 },
};

const ready = '.status.conditions[?(@.type=="Ready")]';

describe('helm.toolkit.fluxcd.io/v2 HelmRelease', () => {
  describe('CRD presentation', () => {
    it('names, short name, categories, columns and status default are Flux’s', () => {
      const crd = crdManifest(HelmReleaseKind);
      expect(crd.metadata.name).to.equal('helmreleases.helm.toolkit.fluxcd.io');
      expect(crd.spec.names).to.deep.include({
        kind: 'HelmRelease',
        plural: 'helmreleases',
        singular: 'helmrelease',
        shortNames: ['hr'],
        categories: ['all', 'fluxcd', 'fluxcd-appliers'],
      });
      const version = crd.spec.versions[0]!;
      expect(version.name).to.equal('v2');
      expect(version.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`)).to.deep.equal([
        'Age=.metadata.creationTimestamp',
        `Ready=${ready}.status`,
        `Status=${ready}.message`,
      ]);
      const schema = version.schema.openAPIV3Schema as { properties: { status: { default: unknown } } };
      expect(schema.properties.status.default).to.deep.equal({ observedGeneration: -1 });
    });

    it('status and snapshot carry Flux’s fields', () => {
      const fields = (s: Json) => Object.keys((s.properties ?? {}) as Json).sort();
      const status = structural(HelmReleaseKind.status);
      expect(fields(status)).to.deep.equal(
        [
          'conditions',
          'failures',
          'helmChart',
          'history',
          'installFailures',
          'inventory',
          'lastAttemptedConfigDigest',
          'lastAttemptedGeneration',
          'lastAttemptedReleaseAction',
          'lastAttemptedReleaseActionDuration',
          'lastAttemptedRevision',
          'lastAttemptedRevisionDigest',
          'lastAttemptedValuesChecksum',
          'lastHandledForceAt',
          'lastHandledReconcileAt',
          'lastHandledResetAt',
          'lastReleaseRevision',
          'observedCommonMetadataDigest',
          'observedGeneration',
          'observedPostRenderersDigest',
          'storageNamespace',
          'upgradeFailures',
        ].sort(),
      );
      const snapshot = (status.properties as Record<string, Json>).history!.items as Json;
      expect(fields(snapshot)).to.deep.equal(
        [
          'action',
          'apiVersion',
          'appVersion',
          'chartName',
          'chartVersion',
          'configDigest',
          'deleted',
          'digest',
          'firstDeployed',
          'lastDeployed',
          'name',
          'namespace',
          'ociDigest',
          'status',
          'testHooks',
          'version',
        ].sort(),
      );
      expect((snapshot.required as string[]).sort()).to.deep.equal(
        [
          'chartName',
          'chartVersion',
          'configDigest',
          'digest',
          'firstDeployed',
          'lastDeployed',
          'name',
          'namespace',
          'status',
          'version',
        ].sort(),
      );
    });

    it('values keep unknown fields and carry no type', () => {
      const values = (structural(HelmReleaseKind.spec).properties as Record<string, Json>).values!;
      expect(values['x-kubernetes-preserve-unknown-fields']).to.equal(true);
      expect(values).to.not.have.property('type');
    });
  });

  describe('spec validation with checkSpec', () => {
    it('accepts the podinfo example of the spec document and applies the chart template defaults', () => {
      const { spec, errors } = admit(podinfo);
      expect(errors).to.deep.equal([]);
      expect(spec.chart!.spec.reconcileStrategy).to.equal('ChartVersion');
      expect(spec.chart!.spec.version).to.equal('6.5.*');
      expect(spec.values).to.deep.equal({ replicaCount: 2 });
      const bare = admit({
        interval: '5m',
        chart: { spec: { chart: './charts/app', sourceRef: podinfo.chart.spec.sourceRef } },
      });
      expect(bare.errors).to.deep.equal([]);
      expect(bare.spec.chart!.spec.version).to.equal('*');
    });

    it('accepts a chartRef to an OCIRepository with valuesFrom, post-renderers and drift detection', () => {
      const { spec, errors } = admit({
        interval: '10m',
        chartRef: { kind: 'OCIRepository', name: 'podinfo', namespace: 'default' },
        valuesFrom: [
          { kind: 'ConfigMap', name: 'prod-env-values', valuesKey: 'values-prod.yaml' },
          { kind: 'Secret', name: 'prod-tls-values', valuesKey: 'crt', targetPath: 'tls.crt', optional: true },
          {
            kind: 'ConfigMap',
            name: 'app-config-source',
            valuesKey: 'application.yml',
            targetPath: 'externalConfig.application\\.yml.content',
            literal: true,
          },
        ],
        values: { replicaCount: 2, ingress: { hosts: [{ host: 'podinfo.local' }] } },
        postRenderers: [
          {
            kustomize: {
              patches: [
                {
                  target: { version: 'v1', kind: 'Deployment', name: 'metrics-server' },
                  patch: '- op: add\n  path: /metadata/labels/environment\n  value: production\n',
                },
              ],
              images: [{ name: 'docker.io/bitnami/metrics-server', newTag: '0.4.1-debian-10-r54' }],
            },
          },
        ],
        driftDetection: { mode: 'warn', ignore: [{ paths: ['/spec/replicas'] }] },
        commonMetadata: { labels: { team: 'platform' } },
        install: { strategy: { name: 'RetryOnFailure', retryInterval: '2m' }, crds: 'CreateReplace' },
        upgrade: { crds: 'CreateReplace', serverSideApply: 'auto', chartNameChangeStrategy: 'InPlaceUpdate' },
        uninstall: { keepHistory: true },
        dependsOn: [{ name: 'backend', readyExpr: "dep.status.conditions.exists(c, c.type == 'Ready')" }],
        healthCheckExprs: [{ apiVersion: 'bitnami.com/v1alpha1', current: 'true' }],
        waitStrategy: { name: 'poller' },
        postRenderStrategy: 'nohooks',
      });
      expect(errors).to.deep.equal([]);
      expect(spec.uninstall!.deletionPropagation).to.equal('background');
      expect(spec.chart).to.equal(undefined);
    });

    it('defaults the verification provider of the chart template', () => {
      const { spec, errors } = admit({
        ...podinfo,
        chart: { spec: { ...podinfo.chart.spec, verify: { secretRef: { name: 'cosign-pub' } } } },
      });
      expect(errors).to.deep.equal([]);
      expect(spec.chart!.spec.verify!.provider).to.equal('cosign');
    });

    it('rejects a 54-character release name and an unknown CRD policy, naming the fields', () => {
      const { errors } = admit({
        ...podinfo,
        releaseName: 'r'.repeat(54),
        install: { crds: 'Always' },
        upgrade: { remediation: { strategy: 'retry' } },
        chartRef: { kind: 'GitRepository', name: 'podinfo' },
      });
      expect(errors.join('\n'))
        .to.match(/spec\.releaseName: must NOT have more than 53 characters/)
        .and.match(/spec\.install\.crds: must be one of Skip, Create, CreateReplace/)
        .and.match(/spec\.upgrade\.remediation\.strategy: must be one of rollback, uninstall/)
        .and.match(/spec\.chartRef\.kind: must be one of OCIRepository, HelmChart, ExternalArtifact/);
      expect(admit({ ...podinfo, releaseName: 'r'.repeat(53) }).errors).to.deep.equal([]);
      expect(admit({}).errors).to.include('spec.interval: required');
    });

    it('rejects bad durations, value paths and enums', () => {
      const { errors } = admit({
        ...podinfo,
        interval: 'soon',
        timeout: '1d',
        valuesFrom: [{ kind: 'Secret', name: 'v', targetPath: 'a b' }],
        driftDetection: { mode: 'on' },
        uninstall: { deletionPropagation: 'cascade' },
      });
      expect(errors.join('\n'))
        .to.match(/spec\.interval: must match pattern/)
        .and.match(/spec\.timeout: must match pattern/)
        .and.match(/spec\.valuesFrom\.0\.targetPath: must match pattern/)
        .and.match(/spec\.driftDetection\.mode: must be one of enabled, warn, disabled/)
        .and.match(/spec\.uninstall\.deletionPropagation: must be one of background, foreground, orphan/);
    });

    it('applies Flux’s CEL rules: one of chart and chartRef, retryInterval only with RetryOnFailure', () => {
      const { chart: _, ...noChart } = podinfo;
      expect(admit(noChart).errors).to.deep.equal(['either chart or chartRef must be set']);
      expect(admit({ ...podinfo, chartRef: { kind: 'HelmChart', name: 'podinfo' } }).errors).to.deep.equal([
        'either chart or chartRef must be set',
      ]);
      expect(
        admit({ ...podinfo, upgrade: { strategy: { name: 'RemediateOnFailure', retryInterval: '1m' } } }).errors,
      ).to.deep.equal([".retryInterval cannot be set when .name is 'RemediateOnFailure'"]);
      expect(admit({ ...podinfo, upgrade: { strategy: { name: 'RemediateOnFailure' } } }).errors).to.deep.equal([]);
    });
  });

  it('is a KindDefinition the generic tooling accepts', () => {
    const def: KindDefinition = HelmReleaseKind;
    expect(checkSpec(def, podinfo).errors).to.deep.equal([]);
  });
});
