import { expect } from 'chai';
import { checkHealth } from './health.ts';
import { compile, evaluateBool, ExpressionError, healthExpressions } from './expressions.ts';

const sealed = (conditions: { type: string; status: string }[] | undefined) => ({
  apiVersion: 'bitnami.com/v1alpha1',
  kind: 'SealedSecret',
  metadata: { name: 's', namespace: 'ns', generation: 1 },
  ...(conditions ? { status: { conditions } } : {}),
});

describe('CEL expressions', () => {
  const rules = healthExpressions([
    {
      apiVersion: 'bitnami.com/v1alpha1',
      kind: 'SealedSecret',
      failed: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
      current: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
    },
    {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      inProgress: "has(status.phase) && status.phase == 'Pending'",
      current: "status.phase == 'Done'",
    },
  ]);

  it('decide health for the kinds they name, in the order inProgress, failed, current', () => {
    expect(rules(sealed([{ type: 'Synced', status: 'True' }]))).to.include({ state: 'ready' });
    expect(rules(sealed([{ type: 'Synced', status: 'False' }]))).to.deep.equal({
      state: 'failed',
      message: 'failed expression is true',
    });
    const widget = (phase: string) => ({
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w' },
      status: { phase },
    });
    expect(rules(widget('Pending'))).to.include({ state: 'pending' });
    expect(rules(widget('Done'))).to.include({ state: 'ready' });
    expect(rules(widget('Other'))).to.deep.equal({ state: 'pending', message: 'current expression is not yet true' });
  });

  it('leave other kinds to kstatus', () => {
    expect(rules({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })).to.equal(undefined);
    expect(
      checkHealth(
        [
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
          sealed([{ type: 'Synced', status: 'False' }]),
        ],
        rules,
      ),
    ).to.deep.equal({
      ready: false,
      pending: [],
      failed: ['SealedSecret/ns/s: failed expression is true'],
    });
  });

  it('read a field that is not there yet as not ready, saying why', () => {
    const health = rules(sealed(undefined));
    expect(health?.state).to.equal('pending');
    expect(health?.message).to.match(/^expressions not yet true \(failed: .*status.*; current: .*status.*\)$/);
  });

  it('refuse an expression that does not parse, naming the field', () => {
    expect(() => healthExpressions([{ apiVersion: 'a/v1', kind: 'A', current: 'status.(' }])).to.throw(
      ExpressionError,
      /^spec\.healthCheckExprs\[0\]\.current: invalid CEL expression "status\.\(": /,
    );
  });

  it('evaluate to a boolean or say what they gave instead', () => {
    expect(
      evaluateBool(compile('dep.metadata.name == self.metadata.name', 'x'), {
        dep: { metadata: { name: 'a' } },
        self: { metadata: { name: 'a' } },
      }),
    ).to.equal(true);
    expect(evaluateBool(compile('1 + 1', 'x'), {})).to.match(/not a bool/);
  });
});
