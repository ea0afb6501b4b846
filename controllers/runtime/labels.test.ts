import { expect } from 'chai';
import { LabelSelectorError, labelSelectorMatcher } from './labels.ts';

describe('label selectors', () => {
  it('matches labels and expressions as the API server does', () => {
    const match = labelSelectorMatcher({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['front', 'edge'] },
        { key: 'lock', operator: 'DoesNotExist' },
        { key: 'env', operator: 'NotIn', values: ['prod'] },
      ],
    });
    expect(match({ app: 'web', tier: 'front' })).to.equal(true);
    expect(match({ app: 'web', tier: 'edge', env: 'dev' })).to.equal(true);
    expect(match({ app: 'web', tier: 'front', lock: 'true' })).to.equal(false);
    expect(match({ app: 'web', tier: 'back' })).to.equal(false);
    expect(match({ app: 'web', tier: 'front', env: 'prod' })).to.equal(false);
    expect(match({ tier: 'front' })).to.equal(false);
    expect(labelSelectorMatcher(undefined)({})).to.equal(true);
    expect(labelSelectorMatcher({})({ any: 'x' })).to.equal(true);
    expect(labelSelectorMatcher({ matchExpressions: [{ key: 'a', operator: 'Exists' }] })({ a: '' })).to.equal(true);
  });

  it('refuses requirements the API server refuses', () => {
    expect(() => labelSelectorMatcher({ matchExpressions: [{ key: 'a', operator: 'In' }] })).to.throw(
      LabelSelectorError,
      "matchExpressions[0] (key 'a'): operator In needs values",
    );
    expect(() =>
      labelSelectorMatcher({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
    ).to.throw(LabelSelectorError, 'takes no values');
    expect(() => labelSelectorMatcher({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] })).to.throw(
      LabelSelectorError,
      "unknown operator 'Gt'",
    );
  });
});
