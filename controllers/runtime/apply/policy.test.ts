import { expect } from 'chai';
import type { KubernetesObject } from '@kubernetes/client-node';
import { applyPolicy, pruneDisabled } from './policy.ts';

const obj = (annotations: Record<string, string> = {}): KubernetesObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'x', annotations },
});
const none = { skip: false, ifNotPresent: false, merge: false, force: false };

describe('apply policy', () => {
  it('defaults to Override without force', () => {
    expect(applyPolicy(obj(), undefined)).to.deep.equal(none);
    expect(applyPolicy(obj(), obj())).to.deep.equal(none);
  });

  it('reads the ssa, reconcile and force annotations from the manifest or the live object', () => {
    expect(applyPolicy(obj({ 'kustomize.toolkit.fluxcd.io/ssa': 'Ignore' }), undefined).skip).to.equal(true);
    expect(applyPolicy(obj(), obj({ 'kustomize.toolkit.fluxcd.io/reconcile': 'disabled' })).skip).to.equal(true);
    expect(applyPolicy(obj({ 'kustomize.toolkit.fluxcd.io/ssa': 'IfNotPresent' }), undefined)).to.deep.equal({
      ...none,
      ifNotPresent: true,
    });
    expect(applyPolicy(obj(), obj({ 'kustomize.toolkit.fluxcd.io/ssa': 'Merge' }))).to.deep.equal({
      ...none,
      merge: true,
    });
    expect(applyPolicy(obj({ 'kustomize.toolkit.fluxcd.io/force': 'enabled' }), undefined)).to.deep.equal({
      ...none,
      force: true,
    });
  });

  it('matches values exactly, as Flux does', () => {
    expect(applyPolicy(obj({ 'kustomize.toolkit.fluxcd.io/ssa': 'merge' }), undefined)).to.deep.equal(none);
    expect(applyPolicy(obj({ 'kustomize.toolkit.fluxcd.io/reconcile': 'enabled' }), undefined)).to.deep.equal(none);
  });

  it('takes the annotation domain as a parameter', () => {
    expect(applyPolicy(obj({ 'helm.toolkit.fluxcd.io/ssa': 'Ignore' }), undefined).skip).to.equal(false);
    expect(
      applyPolicy(obj({ 'helm.toolkit.fluxcd.io/ssa': 'Ignore' }), undefined, 'helm.toolkit.fluxcd.io').skip,
    ).to.equal(true);
  });

  it('reads prune: disabled from the live object', () => {
    expect(pruneDisabled(obj({ 'kustomize.toolkit.fluxcd.io/prune': 'disabled' }))).to.equal(true);
    expect(pruneDisabled(obj())).to.equal(false);
  });
});
