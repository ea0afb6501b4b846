import { expect } from 'chai';
import { inventoryOf, summarize } from './changeset.ts';
import {
  entryOf,
  formatId,
  normalizeInventory,
  parseId,
  refOf,
  refOfEntry,
  staleEntries,
  subjectOf,
} from './inventory.ts';

describe('inventory', () => {
  it('formats ids as Flux does', () => {
    expect(formatId({ namespace: 'default', name: 'app', group: 'apps', kind: 'Deployment' })).to.equal(
      'default_app_apps_Deployment',
    );
    expect(formatId({ namespace: '', name: 'ns1', group: '', kind: 'Namespace' })).to.equal('_ns1__Namespace');
    expect(formatId({ namespace: 'default', name: 'cfg', group: '', kind: 'ConfigMap' })).to.equal(
      'default_cfg__ConfigMap',
    );
    expect(
      formatId({
        namespace: '',
        name: 'system:auth-delegator',
        group: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
      }),
    ).to.equal('_system__auth-delegator_rbac.authorization.k8s.io_ClusterRole');
  });

  it('parses what it formats, colons in names included', () => {
    const refs = [
      { namespace: 'default', name: 'app', group: 'apps', kind: 'Deployment' },
      { namespace: '', name: 'ns1', group: '', kind: 'Namespace' },
      { namespace: 'default', name: 'cfg', group: '', kind: 'ConfigMap' },
      { namespace: '', name: 'system:controller:x', group: 'rbac.authorization.k8s.io', kind: 'ClusterRoleBinding' },
      { namespace: 'flux-system', name: 'podinfo', group: 'kustomize.toolkit.fluxcd.io', kind: 'Kustomization' },
    ];
    for (const ref of refs) expect(parseId(formatId(ref))).to.deep.equal(ref);
  });

  it('rejects ids that are not four fields', () => {
    for (const bad of ['', 'nounderscores', 'a_b', 'ns__Kind', 'default___ConfigMap'])
      expect(() => parseId(bad), bad).to.throw(/invalid inventory id/);
  });

  it('derives refs, entries and subjects from objects', () => {
    const ref = refOf({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'app', namespace: 'default' } });
    expect(ref).to.deep.equal({ namespace: 'default', name: 'app', group: 'apps', version: 'v1', kind: 'Deployment' });
    expect(entryOf(ref)).to.deep.equal({ id: 'default_app_apps_Deployment', v: 'v1' });
    expect(refOfEntry({ id: '_ns1__Namespace', v: 'v1' })).to.deep.equal({
      namespace: '',
      name: 'ns1',
      group: '',
      version: 'v1',
      kind: 'Namespace',
    });
    expect(subjectOf(ref)).to.equal('Deployment/default/app');
    expect(subjectOf({ namespace: '', name: 'ns1', kind: 'Namespace' })).to.equal('Namespace/ns1');
  });

  it('finds stale entries by id, whatever their version', () => {
    const old = [
      { id: 'default_a__ConfigMap', v: 'v1' },
      { id: 'default_b__ConfigMap', v: 'v1' },
      { id: 'default_w_example.com_Widget', v: 'v1beta1' },
    ];
    const current = [
      { id: 'default_a__ConfigMap', v: 'v1' },
      { id: 'default_w_example.com_Widget', v: 'v1' },
      { id: 'default_c__ConfigMap', v: 'v1' },
    ];
    expect(staleEntries(old, current)).to.deep.equal([{ id: 'default_b__ConfigMap', v: 'v1' }]);
    expect(staleEntries(current, current)).to.deep.equal([]);
    expect(staleEntries([], current)).to.deep.equal([]);
  });

  it('normalizes an inventory: sorted by id, one entry per id', () => {
    expect(
      normalizeInventory([
        { id: 'b_x__ConfigMap', v: 'v1' },
        { id: '_a__Namespace', v: 'v1' },
        { id: 'b_x__ConfigMap', v: 'v1' },
      ]),
    ).to.deep.equal([
      { id: '_a__Namespace', v: 'v1' },
      { id: 'b_x__ConfigMap', v: 'v1' },
    ]);
  });

  it('builds the inventory and the event summary from a change set', () => {
    const cs = [
      { id: 'ns_a__ConfigMap', version: 'v1', subject: 'ConfigMap/ns/a', action: 'created' as const },
      { id: 'ns_b__ConfigMap', version: 'v1', subject: 'ConfigMap/ns/b', action: 'unchanged' as const },
      { id: 'ns_c__ConfigMap', version: 'v1', subject: 'ConfigMap/ns/c', action: 'skipped' as const },
      { id: 'ns_d__ConfigMap', version: 'v1', subject: 'ConfigMap/ns/d', action: 'deleted' as const },
    ];
    expect(inventoryOf(cs).map((e) => e.id)).to.deep.equal(['ns_a__ConfigMap', 'ns_b__ConfigMap', 'ns_c__ConfigMap']);
    expect(summarize(cs)).to.equal('ConfigMap/ns/a created\nConfigMap/ns/d deleted');
  });
});
