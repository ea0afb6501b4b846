import { expect } from 'chai';
import { parse } from 'yaml';
import { crdManifest, crdYaml } from './crd.ts';
import { ALL_KINDS } from './index.ts';
import { structural } from './schema.ts';
import { GitRepositoryKind } from './source/gitrepository.ts';
import { checkSpec } from './validate.ts';

function walk(node: unknown, visit: (n: Record<string, unknown>, path: string) => void, path = ''): void {
  if (typeof node !== 'object' || node === null) return;
  visit(node as Record<string, unknown>, path);
  for (const [k, v] of Object.entries(node)) walk(v, visit, `${path}/${k}`);
}

describe('CRD generation', () => {
  for (const def of ALL_KINDS) {
    it(`${def.kind}: structural schema (typed objects, no patternProperties, no additionalProperties:false)`, () => {
      const schema = crdManifest(def).spec.versions[0]!.schema.openAPIV3Schema;
      walk(schema, (n, path) => {
        expect(n, path).to.not.have.property('patternProperties');
        expect(n.additionalProperties, path).to.not.equal(false);
        if ('properties' in n) expect(n.type, `${path} must be typed`).to.equal('object');
      });
    });

    it(`${def.kind}: YAML round-trips to the manifest, with status subresource and Ready columns`, () => {
      const doc = parse(crdYaml(def));
      expect(doc).to.deep.equal(JSON.parse(JSON.stringify(crdManifest(def))));
      const v = doc.spec.versions[0];
      expect(v.subresources).to.deep.equal({ status: {} });
      expect(v.additionalPrinterColumns.map((c: { name: string }) => c.name)).to.include.members([
        'Age',
        'Ready',
        'Status',
      ]);
    });
  }

  it('GitRepository carries Flux names: short name, categories, URL column, status default', () => {
    const crd = crdManifest(GitRepositoryKind);
    expect(crd.metadata.name).to.equal('gitrepositories.source.toolkit.fluxcd.io');
    expect(crd.spec.names.shortNames).to.deep.equal(['gitrepo']);
    expect(crd.spec.names.categories).to.deep.equal(['all', 'fluxcd', 'fluxcd-sources']);
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema as { properties: { status: { default: unknown } } };
    expect(schema.properties.status.default).to.deep.equal({ observedGeneration: -1 });
  });

  it('maps records to additionalProperties', () => {
    const s = structural(GitRepositoryKind.status) as {
      properties: { artifact: { properties: { metadata: unknown } } };
    };
    expect(s.properties.artifact.properties.metadata).to.deep.include({
      type: 'object',
      additionalProperties: { type: 'string' },
    });
  });
});

describe('spec validation with the CRD schema', () => {
  it('applies defaults, as the API server would', () => {
    const { spec, errors } = checkSpec<{ timeout: string; verify: { mode: string } }>(GitRepositoryKind, {
      url: 'https://example.com/repo.git',
      interval: '5m',
      verify: { secretRef: { name: 'keys' } },
    });
    expect(errors).to.deep.equal([]);
    expect(spec.timeout).to.equal('60s');
    expect(spec.verify.mode).to.equal('HEAD');
  });

  it('names every invalid field', () => {
    const { errors } = checkSpec(GitRepositoryKind, { url: 'ftp://example.com', interval: 'soon', provider: 'gitlab' });
    expect(errors).to.have.length(3);
    expect(errors.join('\n'))
      .to.match(/spec\.url: must match pattern/)
      .and.match(/spec\.interval/)
      .and.match(/spec\.provider: must be one of generic/);
    expect(checkSpec(GitRepositoryKind, {}).errors).to.include.members([
      'spec.url: required',
      'spec.interval: required',
    ]);
  });
});
