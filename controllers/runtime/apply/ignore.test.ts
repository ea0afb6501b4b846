import { expect } from 'chai';
import { compileIgnoreRules, IgnoreRuleError, parseSelector, withIgnoredFromLive } from './ignore.ts';

const deployment = (name: string, labels: Record<string, string> = {}, replicas = 2) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'apps', labels, annotations: { 'example.com/hash': 'abc' } },
  spec: { replicas, template: { spec: { containers: [{ name: 'app', image: 'app:1' }] } } },
});

describe('drift ignore rules', () => {
  it('select objects by group, kind, anchored name and namespace patterns, labels and annotations', () => {
    const rules = compileIgnoreRules([
      {
        paths: ['/spec/replicas'],
        target: { group: 'apps', kind: 'Deployment', name: 'web-.*', labelSelector: 'tier in (front,edge),!legacy' },
      },
      {
        paths: ['/metadata/annotations/example.com~1hash'],
        target: { namespace: 'ap.s', annotationSelector: 'example.com/hash=abc' },
      },
    ]);
    expect(rules(deployment('web-1', { tier: 'front' }))).to.deep.equal([
      ['spec', 'replicas'],
      ['metadata', 'annotations', 'example.com/hash'],
    ]);
    expect(rules(deployment('web-1', { tier: 'front', legacy: 'y' }))).to.deep.equal([
      ['metadata', 'annotations', 'example.com/hash'],
    ]);
    expect(rules(deployment('xweb-1', { tier: 'front' })), 'name patterns are anchored').to.have.length(1);
    expect(rules({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'other' } })).to.deep.equal(
      [],
    );
    expect(compileIgnoreRules([{ paths: ['/spec/replicas'] }])(deployment('any'))).to.deep.equal([
      ['spec', 'replicas'],
    ]);
  });

  it('parse the label selector syntax Kubernetes uses', () => {
    const sel = parseSelector('a=1, b==2, c!=3, d in (x, y), e notin (z), f, !g', 'x');
    const base = { a: '1', b: '2', c: '4', d: 'y', e: 'w', f: '' };
    expect(sel(base)).to.equal(true);
    for (const broken of [
      { ...base, a: '2' },
      { ...base, c: '3' },
      { ...base, d: 'q' },
      { ...base, e: 'z' },
      { ...base, g: '1' },
    ])
      expect(sel(broken)).to.equal(false);
    const { f: _f, ...withoutF } = base;
    expect(sel(withoutF)).to.equal(false);
    expect(() => parseSelector('a >< b', 'spec.x')).to.throw(IgnoreRuleError, "spec.x: cannot parse selector 'a >< b'");
  });

  it('refuse pointers and patterns that do not parse, naming the field', () => {
    expect(() => compileIgnoreRules([{ paths: ['spec/replicas'] }])).to.throw(
      IgnoreRuleError,
      /^spec\.driftIgnoreRules\[0\]\.paths\[0\]: 'spec\/replicas' is not a JSON pointer/,
    );
    expect(() => compileIgnoreRules([{ paths: ['/a'], target: { name: '(' } }])).to.throw(
      IgnoreRuleError,
      /target\.name: '\(' is not a valid regular expression/,
    );
  });

  it('take ignored fields from the live object, drop them when it has none, and leave a new object as declared', () => {
    const desired = deployment('web', {}, 2);
    const live = { ...deployment('web', {}, 5), metadata: { ...deployment('web').metadata, annotations: {} } };
    const paths = [
      ['spec', 'replicas'],
      ['metadata', 'annotations', 'example.com/hash'],
      ['spec', 'template', 'spec', 'containers', '0', 'image'],
    ];
    const out = withIgnoredFromLive(desired, live, paths) as ReturnType<typeof deployment>;
    expect(out.spec.replicas).to.equal(5);
    expect(out.metadata.annotations).to.deep.equal({});
    expect(out.spec.template.spec.containers[0]!.image).to.equal('app:1');
    expect(desired.spec.replicas, 'the input is not changed').to.equal(2);
    expect(withIgnoredFromLive(desired, undefined, paths)).to.equal(desired);
  });

  it('leave out a field another manager has written, so that it keeps it', () => {
    const desired = deployment('web', {}, 2);
    const managedFields = [
      { manager: 'kustomize-controller', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:template': {} } } },
      { manager: 'hpa', operation: 'Update', subresource: 'scale', fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
    ];
    const live = { ...deployment('web', {}, 7), metadata: { ...deployment('web').metadata, managedFields } };
    const out = withIgnoredFromLive(desired, live, [['spec', 'replicas']], 'kustomize-controller') as ReturnType<
      typeof deployment
    >;
    expect(out.spec).to.not.have.property('replicas');
    // Owned by us alone: applied with the live value, so we keep it.
    const ours = {
      ...live,
      metadata: {
        ...live.metadata,
        managedFields: [
          { manager: 'kustomize-controller', operation: 'Apply', fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
        ],
      },
    };
    expect(
      (
        withIgnoredFromLive(desired, ours, [['spec', 'replicas']], 'kustomize-controller') as ReturnType<
          typeof deployment
        >
      ).spec.replicas,
    ).to.equal(7);
  });
});
