import { expect } from 'chai';
import {
  canonicalJson,
  composeValues,
  mergeValues,
  setPathValue,
  ValuesReferenceError,
  valuesDigest,
} from './values.ts';

const objects: Record<string, Record<string, string> | undefined> = {
  'ConfigMap/base': { 'values.yaml': 'replicas: 1\nimage:\n  tag: "1.0"\n  pullPolicy: Always\n' },
  'ConfigMap/extra': { 'prod.yaml': 'replicas: 3\n', cpu: '500m', quoted: '"true"', flag: 'true', port: '8080' },
  'Secret/creds': { 'values.yaml': 'auth:\n  password: s3cr3t\n' },
  'ConfigMap/broken': { 'values.yaml': 'a: [1, 2\n' },
};
const read = async (kind: string, name: string) => objects[`${kind}/${name}`];

describe('HelmRelease values', () => {
  it('merges valuesFrom in order, then spec.values on top', async () => {
    const values = await composeValues(
      'ns',
      { image: { tag: '2.0' }, extra: true },
      [
        { kind: 'ConfigMap', name: 'base' },
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'prod.yaml' },
        { kind: 'Secret', name: 'creds' },
      ],
      read,
    );
    expect(values).to.deep.equal({
      replicas: 3,
      image: { tag: '2.0', pullPolicy: 'Always' },
      auth: { password: 's3cr3t' },
      extra: true,
    });
  });

  it('sets targetPath values typed as helm --set does, quoted ones as strings', async () => {
    const values = await composeValues(
      'ns',
      undefined,
      [
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'cpu', targetPath: 'resources.limits.cpu' },
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'flag', targetPath: 'feature.enabled' },
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'quoted', targetPath: 'feature.label' },
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'port', targetPath: 'ports[1].number' },
        { kind: 'ConfigMap', name: 'extra', valuesKey: 'flag', targetPath: 'feature.raw', literal: true },
      ],
      read,
    );
    expect(values).to.deep.equal({
      resources: { limits: { cpu: '500m' } },
      feature: { enabled: true, label: 'true', raw: 'true' },
      ports: [null, { number: 8080 }],
    });
  });

  it('skips missing optional references and names missing required ones without their values', async () => {
    const skipped = await composeValues(
      'ns',
      {},
      [
        { kind: 'Secret', name: 'absent', optional: true },
        { kind: 'Secret', name: 'creds', valuesKey: 'nope', optional: true },
      ],
      read,
    );
    expect(skipped).to.deep.equal({});
    const missing = await composeValues('ns', {}, [{ kind: 'Secret', name: 'absent' }], read).catch((e: Error) => e);
    expect(missing).to.be.instanceOf(ValuesReferenceError);
    expect((missing as Error).message).to.equal(
      "could not resolve Secret chart values reference 'ns/absent' with key 'values.yaml': resource not found",
    );
    const refs = [{ kind: 'Secret', name: 'creds', valuesKey: 'other' }];
    const noKey = await composeValues('ns', {}, refs, read).catch((e: Error) => e);
    expect((noKey as Error).message).to.contain("with key 'other': key not found");
  });

  it('reports YAML that does not parse by position only', async () => {
    try {
      await composeValues('ns', {}, [{ kind: 'ConfigMap', name: 'broken' }], read);
      expect.fail('no error');
    } catch (err) {
      expect(err).to.be.instanceOf(ValuesReferenceError);
      expect((err as Error).message).to.match(
        /ConfigMap chart values reference 'ns\/broken'.*failed to read values data/,
      );
      expect((err as Error).message).not.to.contain('[1, 2');
    }
  });

  it('merges maps deeply and replaces lists and scalars', () => {
    expect(mergeValues({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 3 }, d: { x: 1 } })).to.deep.equal({
      a: { b: 1, c: [2], e: 3 },
      d: { x: 1 },
    });
  });

  it('parses paths with escaped dots and refuses broken ones', () => {
    const v: Record<string, unknown> = {};
    setPathValue(v, 'annotations.example\\.com/name', 'x');
    expect(v).to.deep.equal({ annotations: { 'example.com/name': 'x' } });
    expect(() => setPathValue({}, 'a..b', '1')).to.throw('empty key');
    expect(() => setPathValue({}, 'a[x]', '1')).to.throw('bad list index');
  });

  it('digests canonical JSON: key order does not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: { x: '<&>' }, c: [1.5, true, null] })).to.equal(
      '{"a":{"x":"<&>"},"b":1,"c":[1.5,true,null]}',
    );
    expect(valuesDigest({ a: 1, b: 2 })).to.equal(valuesDigest({ b: 2, a: 1 }));
    expect(valuesDigest({ a: 1 })).not.to.equal(valuesDigest({ a: 2 }));
    expect(valuesDigest({})).to.match(/^sha256:[0-9a-f]{64}$/);
  });
});
