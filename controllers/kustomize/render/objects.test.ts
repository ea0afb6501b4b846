import { expect } from 'chai';
import { BuildError } from './errors.ts';
import { parseManifests, parseYamlStream } from './objects.ts';

describe('reading built objects', () => {
  it('reads YAML as Kubernetes does: 1.1 octal and booleans, no timestamps or base-60 numbers', () => {
    const [doc] = parseYamlStream(
      'mode: 0755\nenabled: yes\nports: 22:22\ndate: 2024-01-01\ntag: "1.10"\nhex: 0x1F\n',
      'test',
    );
    expect(doc!.value).to.deep.equal({
      mode: 493,
      enabled: true,
      ports: '22:22',
      date: '2024-01-01',
      tag: '1.10',
      hex: 31,
    });
  });

  it('skips empty documents and keeps the order', () => {
    const objects = parseManifests(
      `---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
apiVersion: v1
kind: Secret
metadata: {name: b}
`,
    );
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).to.deep.equal(['ConfigMap/a', 'Secret/b']);
  });

  it('names the document that is broken or incomplete', () => {
    expect(() => parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [\n')).to.throw(
      BuildError,
      /^kustomize build output: document 2 is not valid YAML: /,
    );
    expect(() => parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: ns\n')).to.throw(
      BuildError,
      'document 1 of the kustomize build output (ConfigMap/ns) has no metadata.name',
    );
    expect(() => parseManifests('metadata: {name: x}\n')).to.throw(
      'document 1 of the kustomize build output (x) has no apiVersion, kind',
    );
    expect(() => parseManifests('- a\n- b\n')).to.throw(
      'document 1 of the kustomize build output is not a YAML mapping',
    );
  });
});
