import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { isImmutableError, reasonOf, ValidationError } from './errors.ts';

const apiError = (code: number, reason: string, message: string) =>
  new ApiException(code, message, { kind: 'Status', reason, message }, {});

describe('apply errors', () => {
  it('takes the reason from the API server status', () => {
    expect(
      reasonOf(apiError(422, 'Invalid', 'Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1')),
    ).to.equal('Invalid: Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1');
    expect(reasonOf(new Error('socket hang up'))).to.equal('socket hang up');
  });

  it('recognises immutable field errors, not every invalid object', () => {
    expect(
      isImmutableError(
        apiError(422, 'Invalid', 'Job.batch "m" is invalid: spec.template: Invalid value: ...: field is immutable'),
      ),
    ).to.equal(true);
    expect(
      isImmutableError(
        apiError(
          422,
          'Invalid',
          'Service "s" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.0.0.9"}: may not change once set',
        ),
      ),
    ).to.equal(true);
    expect(
      isImmutableError(
        apiError(
          422,
          'Invalid',
          'Widget.example.com "w" is invalid: spec.size: Invalid value: "integer": Value is immutable',
        ),
      ),
    ).to.equal(true);
    expect(
      isImmutableError(apiError(422, 'Invalid', 'Deployment.apps "x" is invalid: spec.replicas: Invalid value: -1')),
    ).to.equal(false);
    expect(isImmutableError(new Error('field is immutable'))).to.equal(false);
  });

  it('names every failing object in one message', () => {
    const err = new ValidationError(
      [
        { subject: 'Deployment/ns/a', reason: 'Invalid: bad replicas' },
        { subject: 'Widget/ns/w', reason: 'no matches for kind "Widget"' },
      ],
      [],
    );
    expect(err.message).to.equal(
      'Deployment/ns/a dry-run failed: Invalid: bad replicas\nWidget/ns/w dry-run failed: no matches for kind "Widget"',
    );
  });
});
