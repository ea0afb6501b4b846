// A ReconcileContext for unit tests of reconcilers: it records events and progress writes, and
// replaces the status on progress as the controller does. `abort` stands for a newer request.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ReconcileContext } from './controller.ts';
import { progressStatus, type ObservedStatus } from './outcome.ts';

export type TestContext<S extends ObservedStatus> = ReconcileContext<S> & { events: string[]; progressed: string[] };

export function testContext<S extends ObservedStatus>(
  obj: KubernetesObject & { status?: S },
  abort = new AbortController(),
): TestContext<S> {
  const c: TestContext<S> = {
    key: `${obj.metadata?.namespace}/${obj.metadata?.name}`,
    logger: { error: () => {}, debug: () => {}, info: () => {} } as never,
    status: structuredClone(obj.status ?? ({} as S)),
    now: () => new Date('2026-01-01T00:00:00Z'),
    event: (_type, reason, message) => void c.events.push(`${reason}: ${message}`),
    skipStatus: false,
    signal: abort.signal,
    workingOn: () => {},
    progress: async (message) => {
      c.progressed.push(message);
      c.status = progressStatus(c.status, message, obj.metadata?.generation ?? 0, c.now());
    },
    events: [],
    progressed: [],
  };
  return c;
}
