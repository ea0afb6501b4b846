import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { apiStatusOf, errorMessage, refusal, statusCode } from './api-errors.ts';
import { outcomeOf } from './outcome.ts';

const FORBIDDEN =
  'secrets "git-auth" is forbidden: User "system:serviceaccount:tide-system:source-controller" ' +
  'cannot get resource "secrets" in API group "" in the namespace "apps"';

// What the API server answers, and what client-node keeps of it: the generated clients hold the
// body as text, with the response headers beside it.
function refused(body: unknown, code = 403): ApiException<unknown> {
  return new ApiException(code, 'Unknown API Status Code!', body, {
    'audit-id': 'c0ffee',
    'x-kubernetes-pf-flowschema-uid': 'flow-1234',
  });
}

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });

describe('API error messages', () => {
  it('are the Status message of a refusal, naming verb and resource, from a body kept as text', () => {
    const err = refused(status(403, 'Forbidden', FORBIDDEN));
    expect(errorMessage(err)).to.equal(FORBIDDEN);
    expect(statusCode(err)).to.equal(403);
    expect(apiStatusOf(err)).to.deep.equal({ message: FORBIDDEN, reason: 'Forbidden', code: 403 });
  });

  it('are the Status message from a body kept parsed (the apply client)', () => {
    const message =
      'gitrepositories.source.toolkit.fluxcd.io "app" is forbidden: User "system:serviceaccount:tide:source" ' +
      'cannot patch resource "gitrepositories/status" in API group "source.toolkit.fluxcd.io" in the namespace "apps"';
    expect(errorMessage(refused(JSON.parse(status(403, 'Forbidden', message))))).to.equal(message);
  });

  it('never carry the headers or any other part of the body', () => {
    const body = JSON.stringify({
      kind: 'Status',
      message: 'Secret "creds" is invalid: data[tls key]: Invalid value: "tls key": a valid config key',
      reason: 'Invalid',
      details: { name: 'creds', kind: 'Secret', causes: [{ message: 'c2VjcmV0LXZhbHVl' }] },
      code: 422,
    });
    const message = errorMessage(refused(body, 422));
    expect(message).to.equal('Secret "creds" is invalid: data[tls key]: Invalid value: "tls key": a valid config key');
    for (const leak of ['c2VjcmV0LXZhbHVl', 'c0ffee', 'flow-1234', 'HTTP-Code', '\n'])
      expect(message).to.not.include(leak);
    // client-node's own text holds all of it: what a message must not be built from.
    expect(refused(body, 422).message).to.include('c2VjcmV0LXZhbHVl').and.include('c0ffee');
  });

  it('say the code when the answer carries no Status (a proxy page, a 401 without body)', () => {
    expect(errorMessage(refused('<html>403 Forbidden by policy</html>'))).to.equal(
      'the API server answered 403 Forbidden',
    );
    expect(errorMessage(new ApiException(401, 'Unauthorized', undefined, {}))).to.equal(
      'the API server answered 401 Unauthorized',
    );
    expect(apiStatusOf(refused(''))).to.equal(undefined);
  });

  it('leave other errors as they are', () => {
    const watch = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    expect(errorMessage(watch)).to.equal('Forbidden');
    expect(statusCode(watch)).to.equal(403);
    expect(apiStatusOf(watch)).to.equal(undefined);
    expect(errorMessage('plain')).to.equal('plain');
  });

  it('become the Ready message of a reconcile that a refusal ended', () => {
    const outcome = outcomeOf(refused(status(403, 'Forbidden', FORBIDDEN)), 'ReconciliationFailed');
    expect(outcome).to.deep.equal({ type: 'error', reason: 'ReconciliationFailed', message: FORBIDDEN });
  });
});

describe('refusal', () => {
  const gitRepositories = { plural: 'gitrepositories', group: 'source.toolkit.fluxcd.io' };

  it('names the verb, the resource and where, for a refused watch that carries no Status', () => {
    expect(refusal('watch', gitRepositories, undefined)).to.equal(
      'forbidden: cannot watch resource "gitrepositories" in API group "source.toolkit.fluxcd.io" at the cluster scope',
    );
    expect(refusal('list', { plural: 'secrets', group: '' }, 'flux-system')).to.equal(
      'forbidden: cannot list resource "secrets" in API group "" in the namespace "flux-system"',
    );
  });
});
