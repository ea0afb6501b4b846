import { expect } from 'chai';
import type { LiveObject, ManagedFieldsEntry } from './client.ts';
import { changedPaths, contentDiffers, KUBECTL_MANAGERS, ownershipDiffers, takeOverManagedFields } from './drift.ts';

const entry = (
  manager: string,
  operation: string,
  fieldsV1: Record<string, unknown>,
  extra: Partial<ManagedFieldsEntry> = {},
): ManagedFieldsEntry => ({
  manager,
  operation,
  apiVersion: 'v1',
  time: '2026-01-01T00:00:00Z',
  fieldsType: 'FieldsV1',
  fieldsV1,
  ...extra,
});

function configMap(
  data: Record<string, string>,
  meta: Record<string, unknown> = {},
  managedFields: ManagedFieldsEntry[] = [],
): LiveObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'x',
      namespace: 'ns',
      uid: 'u1',
      resourceVersion: '10',
      managedFields,
      ...meta,
    } as LiveObject['metadata'],
    data,
  };
}

describe('drift', () => {
  it('names the paths that differ, deepest first found, escaped, bounded', () => {
    const live = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'a', resourceVersion: '1', labels: { 'app.kubernetes.io/name': 'a' } },
      spec: { replicas: 3, template: { spec: { containers: [{ image: 'x:1' }] } } },
      status: { replicas: 3 },
    } as LiveObject;
    const dryRun = structuredClone(live) as LiveObject & { spec: { replicas: number; template: unknown } };
    dryRun.metadata!.resourceVersion = '2';
    dryRun.metadata!.labels = {};
    dryRun.spec.replicas = 1;
    dryRun.spec.template = { spec: { containers: [{ image: 'x:2' }] } };
    (dryRun as { status?: unknown }).status = { replicas: 1 };
    expect(changedPaths(live, dryRun)).to.deep.equal([
      '/metadata/labels/app.kubernetes.io~1name',
      '/spec/replicas',
      '/spec/template/spec/containers/0/image',
    ]);
    expect(changedPaths(live, dryRun, 1)).to.have.length(1);
    expect(changedPaths(live, structuredClone(live))).to.deep.equal([]);
  });

  it('ignores bookkeeping the server rewrites and status', () => {
    const live = {
      ...configMap({ a: '1' }, { generation: 1 }, [entry('m', 'Apply', { 'f:data': {} })]),
      status: { phase: 'x' },
    };
    const dryRun = {
      ...configMap({ a: '1' }, { resourceVersion: '11', generation: 2 }, [
        entry('m', 'Apply', { 'f:data': {} }, { time: 'later' }),
      ]),
      status: { phase: 'y' },
    };
    expect(contentDiffers(live, dryRun)).to.equal(false);
  });

  it('sees changes to data, labels and annotations', () => {
    const live = configMap({ a: '1' });
    expect(contentDiffers(live, configMap({ a: '2' }))).to.equal(true);
    expect(contentDiffers(live, configMap({ a: '1' }, { labels: { l: 'v' } }))).to.equal(true);
    expect(contentDiffers(live, configMap({ a: '1' }, { annotations: { k: 'v' } }))).to.equal(true);
  });

  it('sees a change of the fields our manager owns, and nothing else of managedFields', () => {
    const ours = (fields: Record<string, unknown>) => entry('tide', 'Apply', fields);
    const live = configMap({ a: '1' }, {}, [
      ours({ 'f:data': { 'f:a': {} } }),
      entry('other', 'Update', { 'f:data': { 'f:b': {} } }),
    ]);
    expect(ownershipDiffers(live, configMap({ a: '1' }, {}, [ours({ 'f:data': { 'f:a': {} } })]), 'tide')).to.equal(
      false,
    );
    expect(
      ownershipDiffers(live, configMap({ a: '1' }, {}, [ours({ 'f:data': { 'f:a': {}, 'f:b': {} } })]), 'tide'),
    ).to.equal(true);
    // An object someone else created: the first apply makes us an owner.
    expect(
      ownershipDiffers(configMap({ a: '1' }), configMap({ a: '1' }, {}, [ours({ 'f:data': { 'f:a': {} } })]), 'tide'),
    ).to.equal(true);
  });

  it('folds kubectl managers into ours, keeping controllers and subresources', () => {
    const live = configMap({ a: '1' }, {}, [
      entry('tide', 'Apply', { 'f:data': { 'f:a': {} } }),
      entry('kubectl-edit', 'Update', { 'f:data': { 'f:b': {} }, 'f:metadata': { 'f:labels': { 'f:x': {} } } }),
      entry('kube-controller-manager', 'Update', { 'f:metadata': { 'f:annotations': { 'f:y': {} } } }),
      entry('kubectl', 'Update', { 'f:status': {} }, { subresource: 'status' }),
      entry('kubectl-client-side-apply', 'Update', { 'f:data': { 'f:c': {} } }),
    ]);
    const out = takeOverManagedFields(live, 'tide', KUBECTL_MANAGERS)!;
    expect(out.map((e) => `${e.manager}/${e.operation}${e.subresource ? `/${e.subresource}` : ''}`)).to.deep.equal([
      'tide/Apply',
      'kube-controller-manager/Update',
      'kubectl/Update/status',
    ]);
    expect(out[0]!.fieldsV1).to.deep.equal({
      'f:data': { 'f:a': {}, 'f:b': {}, 'f:c': {} },
      'f:metadata': { 'f:labels': { 'f:x': {} } },
    });
  });

  it('creates our entry when we own nothing yet, and matches exact names exactly', () => {
    const live = configMap({ a: '1' }, {}, [
      entry('before-first-apply', 'Update', { 'f:data': { 'f:a': {} } }),
      entry('before-first-apply-2', 'Update', { 'f:data': { 'f:z': {} } }),
    ]);
    const out = takeOverManagedFields(live, 'tide', KUBECTL_MANAGERS)!;
    expect(out.map((e) => e.manager)).to.deep.equal(['tide', 'before-first-apply-2']);
    expect(out[0]).to.include({ operation: 'Apply', apiVersion: 'v1', fieldsType: 'FieldsV1' });
  });

  it('has nothing to take over when no listed manager is present', () => {
    const live = configMap({ a: '1' }, {}, [
      entry('tide', 'Apply', { 'f:data': {} }),
      entry('helm', 'Update', { 'f:data': {} }),
    ]);
    expect(takeOverManagedFields(live, 'tide', KUBECTL_MANAGERS)).to.equal(undefined);
    expect(takeOverManagedFields(live, 'tide', [])).to.equal(undefined);
  });
});
