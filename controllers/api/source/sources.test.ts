import { parse } from '@marcbachmann/cel-js';
import { expect } from 'chai';
import { crdManifest } from '../crd.ts';
import type { KindDefinition } from '../kind.ts';
import { structural } from '../schema.ts';
import { checkSpec } from '../validate.ts';
import { HelmChartKind } from './helmchart.ts';
import { HelmRepositoryKind } from './helmrepository.ts';
import { OCIRepositoryKind } from './ocirepository.ts';

type Json = Record<string, unknown>;

/**
 * The messages of the x-kubernetes-validations rules the value breaks, evaluated as the API
 * server does after defaulting: each rule with `self` bound to the value at its schema node.
 */
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

/** Validation errors, then CEL rule violations, of a spec as the CRD would see it. */
function admit<T = Json>(def: KindDefinition, spec: unknown): { spec: T; errors: string[] } {
  const checked = checkSpec<T>(def, spec);
  if (checked.errors.length > 0) return checked;
  return { spec: checked.spec, errors: celViolations(structural(def.spec), checked.spec) };
}

function columns(def: KindDefinition): string[] {
  return crdManifest(def).spec.versions[0]!.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`);
}

const ready = '.status.conditions[?(@.type=="Ready")]';

describe('Flux source kinds: HelmRepository, HelmChart, OCIRepository', () => {
  describe('CRD presentation', () => {
    it('names, short names and categories are Flux’s', () => {
      for (const [def, name, short] of [
        [HelmRepositoryKind, 'helmrepositories.source.toolkit.fluxcd.io', 'helmrepo'],
        [HelmChartKind, 'helmcharts.source.toolkit.fluxcd.io', 'hc'],
        [OCIRepositoryKind, 'ocirepositories.source.toolkit.fluxcd.io', 'ocirepo'],
      ] as const) {
        const crd = crdManifest(def);
        expect(crd.metadata.name).to.equal(name);
        expect(crd.spec.names.shortNames).to.deep.equal([short]);
        expect(crd.spec.names.categories).to.deep.equal(['all', 'fluxcd', 'fluxcd-sources']);
        const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as { properties: { status: { default: unknown } } };
        expect(schema.properties.status.default).to.deep.equal({ observedGeneration: -1 });
      }
    });

    it('printer columns are Flux’s, in Flux’s order', () => {
      const tail = ['Age=.metadata.creationTimestamp', `Ready=${ready}.status`, `Status=${ready}.message`];
      expect(columns(HelmRepositoryKind)).to.deep.equal(['URL=.spec.url', ...tail]);
      expect(columns(HelmChartKind)).to.deep.equal([
        'Chart=.spec.chart',
        'Version=.spec.version',
        'Source Kind=.spec.sourceRef.kind',
        'Source Name=.spec.sourceRef.name',
        ...tail,
      ]);
      expect(columns(OCIRepositoryKind)).to.deep.equal([
        'URL=.spec.url',
        `Ready=${ready}.status`,
        `Status=${ready}.message`,
        'Age=.metadata.creationTimestamp',
      ]);
    });

    it('status carries Flux’s fields', () => {
      const fields = (def: KindDefinition) => Object.keys((structural(def.status).properties ?? {}) as Json).sort();
      const common = ['artifact', 'conditions', 'lastHandledReconcileAt', 'observedGeneration', 'url'];
      expect(fields(HelmRepositoryKind)).to.deep.equal(common);
      expect(fields(HelmChartKind)).to.deep.equal(
        [...common, 'observedChartName', 'observedSourceArtifactRevision', 'observedValuesFiles'].sort(),
      );
      expect(fields(OCIRepositoryKind)).to.deep.equal([...common, 'observedIgnore', 'observedLayerSelector'].sort());
    });
  });

  describe('HelmRepository', () => {
    it('accepts the documented examples, defaulting the provider', () => {
      const http = admit<{ provider: string; timeout?: string }>(HelmRepositoryKind, {
        interval: '5m0s',
        url: 'https://stefanprodan.github.io/podinfo',
      });
      expect(http.errors).to.deep.equal([]);
      expect(http.spec.provider).to.equal('generic');
      expect(http.spec.timeout).to.equal(undefined);
      const oci = admit(HelmRepositoryKind, {
        type: 'oci',
        interval: '5m0s',
        url: 'oci://ghcr.io/stefanprodan/charts',
        provider: 'aws',
        certSecretRef: { name: 'example-tls' },
        accessFrom: { namespaceSelectors: [{ matchLabels: { 'kubernetes.io/metadata.name': 'flux-system' } }] },
      });
      expect(oci.errors).to.deep.equal([]);
      // interval is optional for a HelmRepository (an OCI one is never fetched on its own).
      expect(admit(HelmRepositoryKind, { url: 'oci://ghcr.io/stefanprodan/charts', type: 'oci' }).errors).to.be.empty;
    });

    it('rejects a bad URL scheme, an unknown type or provider, an hour timeout', () => {
      const { errors } = admit(HelmRepositoryKind, {
        url: 'ftp://charts.example.com',
        type: 'git',
        provider: 'github',
        timeout: '1h',
        accessFrom: {},
      });
      expect(errors.join('\n'))
        .to.match(/spec\.url: must match pattern/)
        .and.match(/spec\.type: must be one of default, oci/)
        .and.match(/spec\.provider: must be one of generic, aws, azure, gcp/)
        .and.match(/spec\.timeout: must match pattern/)
        .and.match(/spec\.accessFrom\.namespaceSelectors: required/);
    });
  });

  describe('HelmChart', () => {
    it('accepts the documented examples, defaulting version and reconcileStrategy', () => {
      const basic = admit<{ version: string; reconcileStrategy: string }>(HelmChartKind, {
        interval: '5m0s',
        chart: './charts/podinfo',
        sourceRef: { kind: 'GitRepository', name: 'podinfo' },
      });
      expect(basic.errors).to.deep.equal([]);
      expect(basic.spec.version).to.equal('*');
      expect(basic.spec.reconcileStrategy).to.equal('ChartVersion');
      const keyless = admit<{ verify: { provider: string } }>(HelmChartKind, {
        interval: '5m',
        chart: 'podinfo',
        reconcileStrategy: 'ChartVersion',
        sourceRef: { kind: 'HelmRepository', name: 'podinfo' },
        version: '>=6.1.6',
        valuesFiles: ['values.yaml', 'values-production.yaml'],
        ignoreMissingValuesFiles: true,
        verify: {
          matchOIDCIdentity: [
            {
              issuer: '^https://token.actions.githubusercontent.com$',
              subject: '^https://github.com/stefanprodan/podinfo.*$',
            },
          ],
        },
      });
      expect(keyless.errors).to.deep.equal([]);
      expect(keyless.spec.verify.provider).to.equal('cosign');
    });

    it('rejects an unknown source kind or strategy, and names the missing fields', () => {
      const { errors } = admit(HelmChartKind, {
        chart: 'podinfo',
        interval: '5m',
        sourceRef: { kind: 'OCIRepository', name: 'podinfo' },
        reconcileStrategy: 'Always',
        verify: { provider: 'gpg', matchOIDCIdentity: [{ issuer: '.*' }] },
      });
      expect(errors.join('\n'))
        .to.match(/spec\.sourceRef\.kind: must be one of HelmRepository, GitRepository, Bucket/)
        .and.match(/spec\.reconcileStrategy: must be one of ChartVersion, Revision/)
        .and.match(/spec\.verify\.provider: must be one of cosign, notation/)
        .and.match(/spec\.verify\.matchOIDCIdentity\.0\.subject: required/);
      expect(admit(HelmChartKind, {}).errors).to.include.members([
        'spec.chart: required',
        'spec.sourceRef: required',
        'spec.interval: required',
      ]);
    });
  });

  describe('OCIRepository', () => {
    it('accepts the documented examples, defaulting provider and timeout', () => {
      const basic = admit<{ provider: string; timeout: string }>(OCIRepositoryKind, {
        interval: '5m0s',
        url: 'oci://ghcr.io/stefanprodan/manifests/podinfo',
        ref: { tag: 'latest' },
      });
      expect(basic.errors).to.deep.equal([]);
      expect(basic.spec.provider).to.equal('generic');
      expect(basic.spec.timeout).to.equal('60s');
      const full = admit(OCIRepositoryKind, {
        interval: '10m',
        url: 'oci://ghcr.io/stefanprodan/charts/podinfo',
        ref: { semver: '>=6.0.0', semverFilter: '.*-rc.*' },
        layerSelector: { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', operation: 'copy' },
        verify: { provider: 'notation', secretRef: { name: 'notation-config' } },
        proxySecretRef: { name: 'http-proxy' },
        ignore: '/*\n!/deploy\n',
      });
      expect(full.errors).to.deep.equal([]);
    });

    it('rejects a non-oci URL, an unknown layer operation or provider', () => {
      const { errors } = admit(OCIRepositoryKind, {
        interval: '5m',
        url: 'https://ghcr.io/stefanprodan/manifests/podinfo',
        layerSelector: { operation: 'unpack' },
        provider: 'github',
      });
      expect(errors.join('\n'))
        .to.match(/spec\.url: must match pattern "\^oci:/)
        .and.match(/spec\.layerSelector\.operation: must be one of extract, copy/)
        .and.match(/spec\.provider: must be one of generic/);
    });

    it('applies Flux’s CEL rules on credential, audiences and provider', () => {
      const base = { interval: '5m', url: 'oci://registry.example.com/app' };
      const token = { ...base, credential: 'ServiceAccountToken' };
      expect(admit(OCIRepositoryKind, { ...token, audiences: ['registry.example.com'] }).errors).to.deep.equal([]);
      expect(admit(OCIRepositoryKind, { ...base, audiences: [] }).errors).to.deep.equal([]);
      expect(admit(OCIRepositoryKind, { ...base, audiences: ['registry.example.com'] }).errors).to.deep.equal([
        "spec.audiences can be set only when spec.credential is set to 'ServiceAccountToken'",
      ]);
      expect(admit(OCIRepositoryKind, token).errors).to.deep.equal([
        "spec.audiences must be set when spec.credential is set to 'ServiceAccountToken'",
      ]);
      expect(admit(OCIRepositoryKind, { ...token, audiences: ['a'], provider: 'aws' }).errors).to.deep.equal([
        "spec.credential 'ServiceAccountToken' can only be used with spec.provider 'generic'",
      ]);
    });
  });
});
