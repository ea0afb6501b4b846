import { expect } from 'chai';
import { BuildError } from './errors.ts';
import type { Manifest } from './objects.ts';
import { setCommonMetadata } from './objects.ts';
import { loadVariables, substitute, SUBSTITUTE_KEY } from './substitute.ts';
import type { VariableSource } from './substitute.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** ConfigMaps and Secrets as the API stores them; a Secret's values base64-encoded. */
function source(objects: Record<string, Record<string, string>>): VariableSource & { reads: string[] } {
  const reads: string[] = [];
  const read = async (kind: 'ConfigMap' | 'Secret', name: string) => {
    reads.push(`${kind}/${name}`);
    return objects[`${kind}/${name}`];
  };
  return Object.assign(read, { reads });
}

function configMap(name: string, data: Record<string, unknown>, extra: Partial<Manifest['metadata']> = {}): Manifest {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'apps', ...extra }, data };
}

describe('post-build substitution', () => {
  it('takes substituteFrom in order, later over earlier, and substitute over all', async () => {
    const read = source({
      'ConfigMap/base': { env: 'dev', region: 'us', only_cm: 'cm' },
      'Secret/secret': { env: b64('staging'), token: b64('s3cr3t') },
    });
    const vars = await loadVariables(
      {
        substitute: { env: 'prod' },
        substituteFrom: [
          { kind: 'ConfigMap', name: 'base' },
          { kind: 'Secret', name: 'secret' },
        ],
      },
      read,
    );
    expect(Object.fromEntries([...vars].map(([k, v]) => [k, v.value]))).to.deep.equal({
      env: 'prod',
      region: 'us',
      only_cm: 'cm',
      token: 's3cr3t',
    });
    expect(read.reads).to.deep.equal(['ConfigMap/base', 'Secret/secret']);
  });

  it('substitutes in every object and removes newlines from values', async () => {
    const objects = [configMap('app-${env}', { region: '${region}', banner: 'a${multi}b' })];
    const out = await substitute(objects, { substitute: { env: 'prod', region: 'eu', multi: 'x\ny\n' } }, source({}));
    expect(out[0]!.metadata.name).to.equal('app-prod');
    expect(out[0]!.data).to.deep.equal({ region: 'eu', banner: 'axyb' });
    expect(objects[0]!.metadata.name, 'input untouched').to.equal('app-${env}');
  });

  it('skips a missing optional object and fails on a missing required one, naming it', async () => {
    const read = source({ 'ConfigMap/present': { a: '1' } });
    const out = await substitute(
      [configMap('x', { a: '${a}' })],
      {
        substituteFrom: [
          { kind: 'ConfigMap', name: 'absent', optional: true },
          { kind: 'ConfigMap', name: 'present' },
        ],
      },
      read,
    );
    expect(out[0]!.data).to.deep.equal({ a: 1 });
    const err = await substitute(
      [configMap('x', {})],
      { substituteFrom: [{ kind: 'Secret', name: 'creds' }] },
      read,
    ).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(BuildError);
    expect((err as Error).message).to.equal(
      'substituteFrom Secret/creds not found; create it or mark the reference optional',
    );
  });

  it('passes on read failures with the reference named', async () => {
    const read: VariableSource = async () => {
      throw new Error('forbidden: cannot get secrets');
    };
    const err = await substitute([], { substituteFrom: [{ kind: 'Secret', name: 's', optional: true }] }, read).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal('substituteFrom Secret/s: forbidden: cannot get secrets');
  });

  it('leaves objects labelled or annotated substitute: disabled alone', async () => {
    const objects = [
      configMap('by-label', { v: '${a}' }, { labels: { [SUBSTITUTE_KEY]: 'disabled' } }),
      configMap('by-annotation', { v: '${a}' }, { annotations: { [SUBSTITUTE_KEY]: 'disabled' } }),
      configMap('enabled', { v: '${a}' }, { annotations: { [SUBSTITUTE_KEY]: 'enabled' } }),
    ];
    const out = await substitute(objects, { substitute: { a: 'x' } }, source({}));
    expect(out.map((o) => o.data)).to.deep.equal([{ v: '${a}' }, { v: '${a}' }, { v: 'x' }]);
  });

  it('does nothing, not even defaults, when no variable is defined', async () => {
    const objects = [configMap('x', { v: '${a:=dflt}', w: '$${kept}' })];
    expect(await substitute(objects, undefined, source({}))).to.equal(objects);
    expect(await substitute(objects, {}, source({}))).to.equal(objects);
    expect(
      await substitute(
        objects,
        { substituteFrom: [{ kind: 'ConfigMap', name: 'empty' }] },
        source({ 'ConfigMap/empty': {} }),
      ),
    ).to.equal(objects);
  });

  it('applies defaults, empties undefined variables and keeps $${escaped} ones', async () => {
    const out = await substitute(
      [configMap('x', { d: '${env:=dev}', u: 'a${undefined_var}b', e: '$${literal}' })],
      { substitute: { other: '1' } },
      source({}),
    );
    expect(out[0]!.data).to.deep.equal({ d: 'dev', u: 'ab', e: '${literal}' });
  });

  it('fails on undefined variables in strict mode, naming the object', async () => {
    const err = await substitute([configMap('x', { u: '${nope}' })], { substitute: { other: '1' } }, source({}), {
      strict: true,
    }).catch((e: unknown) => e);
    expect((err as Error).message).to.equal(
      'post build substitution failed for ConfigMap/apps/x: variable not set (strict mode): "nope"',
    );
  });

  it('refuses variable names Flux refuses, naming where they came from', async () => {
    const err = await substitute(
      [],
      { substituteFrom: [{ kind: 'ConfigMap', name: 'vars' }] },
      source({ 'ConfigMap/vars': { 'my-key': 'x' } }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).to.equal(
      "variable name 'my-key' (from ConfigMap/vars) is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'",
    );
    const inline = await substitute([], { substitute: { '1st': 'x' } }, source({})).catch((e: unknown) => e);
    expect((inline as Error).message).to.match(/'1st' \(from postBuild.substitute\) is invalid/);
  });

  it('reads substituted text as YAML, so unquoted numbers and booleans become numbers and booleans', async () => {
    const objects: Manifest[] = [
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'app', annotations: { id: '${quote}${id}${quote}', raw: '${id}', flag: '${enabled}' } },
        spec: { replicas: '${replicas}' },
      },
    ];
    const out = await substitute(
      objects,
      { substitute: { quote: '"', id: '123', enabled: 'true', replicas: '3' } },
      source({}),
    );
    expect(out[0]!.metadata.annotations).to.deep.equal({ id: '123', raw: 123, flag: true });
    expect(out[0]!.spec).to.deep.equal({ replicas: 3 });
  });

  it('reports malformed expressions and broken results, naming the object', async () => {
    const bad = await substitute([configMap('x', { v: '${oops' })], { substitute: { a: '1' } }, source({})).catch(
      (e: unknown) => e,
    );
    expect((bad as Error).message).to.match(
      /^post build substitution failed for ConfigMap\/apps\/x: missing closing brace in "\$\{oops/,
    );
    const broken = await substitute(
      [configMap('x', { v: '${v}' })],
      { substitute: { v: '[unclosed' } },
      source({}),
    ).catch((e: unknown) => e);
    expect((broken as Error).message).to.match(
      /^post build substitution of ConfigMap\/apps\/x: document 1 is not valid YAML/,
    );
    const nameless = await substitute([configMap('${name}', {})], { substitute: { other: '1' } }, source({})).catch(
      (e: unknown) => e,
    );
    expect((nameless as Error).message).to.match(
      /after post build substitution \(ConfigMap\/apps\) has no metadata.name/,
    );
  });
});

describe('commonMetadata', () => {
  it('sets labels and annotations on the objects only, overriding same keys, never on templates', () => {
    const deploy: Manifest = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', labels: { app: 'web', team: 'old' } },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } } } },
    };
    const [out] = setCommonMetadata([deploy], { labels: { team: 'new', env: 'prod' }, annotations: { owner: 'ops' } });
    expect(out!.metadata).to.deep.equal({
      name: 'web',
      labels: { app: 'web', team: 'new', env: 'prod' },
      annotations: { owner: 'ops' },
    });
    expect(out!.spec).to.deep.equal(deploy.spec);
    expect(deploy.metadata.labels).to.deep.equal({ app: 'web', team: 'old' });
  });
});
