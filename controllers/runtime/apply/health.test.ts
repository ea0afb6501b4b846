import { expect } from 'chai';
import type { KubernetesObject } from '@kubernetes/client-node';
import { checkHealth } from './health.ts';
import { objectHealth } from './kstatus.ts';

type Fixture = KubernetesObject & Record<string, unknown>;

const meta = (name: string, generation = 1) => ({ name, namespace: 'ns', generation });

function deployment(
  status: Record<string, unknown> | undefined,
  spec: Record<string, unknown> = {},
  generation = 1,
): Fixture {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('web', generation),
    spec: { replicas: 2, ...spec },
    ...(status ? { status } : {}),
  };
}

const availableDeployment = {
  observedGeneration: 1,
  replicas: 2,
  updatedReplicas: 2,
  readyReplicas: 2,
  availableReplicas: 2,
  conditions: [
    { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
    { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
  ],
};

function job(conditions: unknown[], status: Record<string, unknown> = {}): Fixture {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta('migrate'),
    spec: {},
    status: { conditions, ...status },
  };
}

function custom(status?: Record<string, unknown>, generation = 1): Fixture {
  return {
    apiVersion: 'example.com/v1',
    kind: 'Widget',
    metadata: meta('w', generation),
    ...(status ? { status } : {}),
  };
}

describe('health rules', () => {
  describe('Deployment', () => {
    it('is ready when every replica is updated and available at the observed generation', () => {
      expect(objectHealth(deployment(availableDeployment))).to.deep.equal({
        state: 'ready',
        message: '2/2 replicas available',
      });
    });

    it('waits for the controller to observe a new generation', () => {
      expect(objectHealth(deployment(availableDeployment, {}, 2))).to.deep.equal({
        state: 'pending',
        message: 'generation 2 not yet observed (observed 1)',
      });
      expect(objectHealth(deployment(undefined)).state).to.equal('pending');
    });

    it('waits for updated, then terminated, then available replicas', () => {
      expect(objectHealth(deployment({ ...availableDeployment, updatedReplicas: 1 })).message).to.equal(
        '1/2 replicas updated',
      );
      expect(objectHealth(deployment({ ...availableDeployment, replicas: 3 })).message).to.equal(
        '1 old replicas pending termination',
      );
      const unavailable = {
        ...availableDeployment,
        availableReplicas: 0,
        conditions: [
          {
            type: 'Available',
            status: 'False',
            reason: 'MinimumReplicasUnavailable',
            message: 'Deployment does not have minimum availability.',
          },
        ],
      };
      expect(objectHealth(deployment(unavailable))).to.deep.equal({
        state: 'pending',
        message: '0/2 replicas available (MinimumReplicasUnavailable: Deployment does not have minimum availability.)',
      });
    });

    it('fails when the progress deadline is exceeded', () => {
      const stuck = {
        ...availableDeployment,
        availableReplicas: 0,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-1" has timed out progressing.',
          },
        ],
      };
      expect(objectHealth(deployment(stuck))).to.deep.equal({
        state: 'failed',
        message: 'progress deadline exceeded: ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out progressing.',
      });
    });

    it('defaults replicas to 1', () => {
      const one = { ...availableDeployment, replicas: 1, updatedReplicas: 1, availableReplicas: 1 };
      expect(objectHealth(deployment(one, { replicas: undefined })).state).to.equal('ready');
    });
  });

  describe('StatefulSet and DaemonSet', () => {
    const sts = (status: Record<string, unknown>, spec: Record<string, unknown> = {}): Fixture => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('db'),
      spec: { replicas: 3, ...spec },
      status: { observedGeneration: 1, ...status },
    });
    const done = {
      replicas: 3,
      readyReplicas: 3,
      currentReplicas: 3,
      updatedReplicas: 3,
      currentRevision: 'db-2',
      updateRevision: 'db-2',
    };

    it('needs every replica ready at the update revision', () => {
      expect(objectHealth(sts(done)).state).to.equal('ready');
      expect(objectHealth(sts({ ...done, readyReplicas: 2 })).message).to.equal('2/3 replicas ready');
      expect(objectHealth(sts({ ...done, currentRevision: 'db-1', updatedReplicas: 1 })).message).to.equal(
        '1/3 replicas at revision db-2',
      );
    });

    it('honours a partition and OnDelete', () => {
      const partitioned = { ...done, currentRevision: 'db-1', updatedReplicas: 1 };
      expect(
        objectHealth(sts(partitioned, { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } }))
          .state,
      ).to.equal('ready');
      expect(
        objectHealth(
          sts({ ...partitioned, updatedReplicas: 0 }, { updateStrategy: { rollingUpdate: { partition: 2 } } }),
        ).state,
      ).to.equal('pending');
      expect(objectHealth(sts({ readyReplicas: 0 }, { updateStrategy: { type: 'OnDelete' } })).state).to.equal('ready');
    });

    it('needs a DaemonSet on every node it wants', () => {
      const ds = (status: Record<string, unknown>): Fixture => ({
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: meta('agent'),
        status: { observedGeneration: 1, ...status },
      });
      const all = {
        desiredNumberScheduled: 2,
        currentNumberScheduled: 2,
        updatedNumberScheduled: 2,
        numberAvailable: 2,
        numberReady: 2,
      };
      expect(objectHealth(ds(all)).state).to.equal('ready');
      expect(objectHealth(ds({ ...all, numberAvailable: 1 })).message).to.equal('1/2 pods available');
    });
  });

  describe('Job', () => {
    it('is ready when complete and failed when failed', () => {
      expect(objectHealth(job([{ type: 'Complete', status: 'True' }])).state).to.equal('ready');
      expect(
        objectHealth(
          job([
            {
              type: 'Failed',
              status: 'True',
              reason: 'BackoffLimitExceeded',
              message: 'Job has reached the specified backoff limit',
            },
          ]),
        ),
      ).to.deep.equal({
        state: 'failed',
        message: 'job failed: BackoffLimitExceeded: Job has reached the specified backoff limit',
      });
      expect(objectHealth(job([], { active: 1 }))).to.deep.equal({
        state: 'pending',
        message: 'job in progress: 1 active, 0 succeeded, 0 failed',
      });
    });
  });

  describe('CustomResourceDefinition', () => {
    const crd = (conditions: unknown[]): Fixture => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      status: { conditions },
    });
    it('is ready once established, failed when its names clash', () => {
      expect(objectHealth(crd([{ type: 'Established', status: 'True' }])).state).to.equal('ready');
      expect(objectHealth(crd([{ type: 'NamesAccepted', status: 'True' }])).state).to.equal('pending');
      expect(
        objectHealth(crd([{ type: 'NamesAccepted', status: 'False', reason: 'MultipleNamesNotAllowed' }])).state,
      ).to.equal('failed');
    });
  });

  describe('other objects', () => {
    it('are ready without status, and by their Ready condition otherwise (pending until True)', () => {
      expect(objectHealth(custom()).state).to.equal('ready');
      expect(objectHealth({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }).state).to.equal('ready');
      expect(
        objectHealth(
          custom({ observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded' }] }),
        ).state,
      ).to.equal('ready');
      expect(
        objectHealth(
          custom({
            conditions: [{ type: 'Ready', status: 'False', reason: 'BuildFailed', message: 'kustomize build failed' }],
          }),
        ),
      ).to.deep.equal({
        // As kstatus: Ready=False is still in progress; only Stalled=True fails.
        state: 'pending',
        message: 'not ready: BuildFailed: kustomize build failed',
      });
      expect(
        objectHealth(custom({ conditions: [{ type: 'Ready', status: 'Unknown', reason: 'Progressing' }] })).state,
      ).to.equal('pending');
    });

    it('follow Reconciling and Stalled before Ready', () => {
      const retrying = [
        { type: 'Ready', status: 'False', reason: 'ArtifactFailed' },
        { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry' },
      ];
      expect(objectHealth(custom({ conditions: retrying })).state).to.equal('pending');
      expect(
        objectHealth(custom({ conditions: [...retrying, { type: 'Stalled', status: 'True', reason: 'InvalidSpec' }] }))
          .state,
      ).to.equal('failed');
    });

    it('are pending while an older generation is observed or while being deleted', () => {
      expect(
        objectHealth(custom({ observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }, 2)).state,
      ).to.equal('pending');
      const deleting = { ...custom(), metadata: { ...meta('w'), deletionTimestamp: new Date() } };
      expect(objectHealth(deleting)).to.deep.equal({ state: 'pending', message: 'being deleted' });
    });

    it('read Pods and PersistentVolumeClaims by phase', () => {
      const pod = (status: Record<string, unknown>): Fixture => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: meta('p'),
        status,
      });
      expect(objectHealth(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] })).state).to.equal(
        'ready',
      );
      expect(objectHealth(pod({ phase: 'Succeeded' })).state).to.equal('ready');
      // A finished Pod is Current in kstatus, whatever its exit.
      expect(objectHealth(pod({ phase: 'Failed', message: 'OOMKilled' })).state).to.equal('ready');
      expect(
        objectHealth(
          pod({
            phase: 'Pending',
            conditions: [
              { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' },
            ],
          }),
        ).message,
      ).to.equal('pod not scheduled: Unschedulable: 0/1 nodes are available');
      const pvc = (phase: string): Fixture => ({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: meta('data'),
        status: { phase },
      });
      expect(objectHealth(pvc('Bound')).state).to.equal('ready');
      expect(objectHealth(pvc('Pending')).state).to.equal('pending');
    });
  });

  it('summarises a set, naming each object that is not ready', () => {
    const report = checkHealth([
      deployment(availableDeployment),
      job([{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }]),
      custom({
        conditions: [
          { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: 'reconciliation in progress' },
        ],
      }),
    ]);
    expect(report).to.deep.equal({
      ready: false,
      pending: ['Widget/ns/w: not ready: Progressing: reconciliation in progress'],
      failed: ['Job/ns/migrate: job failed: DeadlineExceeded'],
    });
    expect(checkHealth([deployment(availableDeployment)])).to.deep.equal({ ready: true, pending: [], failed: [] });
  });
});
