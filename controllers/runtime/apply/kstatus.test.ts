// Runs every upstream kstatus vector (kstatus.vectors.yaml, copied from cli-utils) through objectHealth.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { type HealthState, objectHealth } from './kstatus.ts';

interface Vector {
  name: string;
  expectedStatus: 'Current' | 'InProgress' | 'Failed' | 'Terminating';
  object: KubernetesObject;
}

const data = parse(readFileSync(new URL('./kstatus.vectors.yaml', import.meta.url), 'utf8')) as {
  source: { repository: string; path: string; commit: string };
  cases: Vector[];
};

const STATE: Record<Vector['expectedStatus'], HealthState> = {
  Current: 'ready',
  InProgress: 'pending',
  Terminating: 'pending',
  Failed: 'failed',
};

describe(`kstatus vectors (${data.source.repository} ${data.source.path})`, () => {
  it('has the vectors', () => expect(data.cases.length).to.be.greaterThan(40));

  for (const v of data.cases) {
    it(`${v.name}: ${v.expectedStatus}`, () => {
      const obj = structuredClone(v.object);
      const meta = (obj.metadata ?? {}) as Record<string, unknown>;
      if (meta.creationTimestamp === 'NOW') meta.creationTimestamp = new Date().toISOString();
      const health = objectHealth(obj);
      expect(health.state, health.message).to.equal(STATE[v.expectedStatus]);
    });
  }
});
