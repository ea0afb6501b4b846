// core/v1 Events about the objects a controller reconciles. Repeats within a window are folded
// into one Event with a count, as client-go's recorder does, to spare the API server.
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { realClock, type Clock } from './clock.ts';
import type { Logger } from './logger.ts';
import { errorMessage } from './api-errors.ts';

export type EventType = 'Normal' | 'Warning';

const FOLD_WINDOW_MS = 10 * 60_000;
const MAX_MESSAGE = 1024;

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly component: string;
  private readonly logger: Logger | undefined;
  private readonly clock: Clock;
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(kc: KubeConfig, component: string, logger?: Logger, clock: Clock = realClock) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.component = component;
    this.logger = logger;
    this.clock = clock;
  }

  /** Records an Event; failures are logged, never thrown: an Event is not worth failing a reconcile. */
  async record(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata?.namespace || 'default';
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const foldKey = `${obj.metadata?.uid}|${type}|${reason}|${text}`;
    const now = this.clock.now();
    const nowIso = new Date(now).toISOString();
    this.prune(now);
    try {
      const seen = this.recent.get(foldKey);
      if (seen) {
        seen.count += 1;
        seen.at = now;
        await this.api.patchNamespacedEvent(
          { name: seen.name, namespace: seen.namespace, body: { count: seen.count, lastTimestamp: nowIso } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return;
      }
      const name = `${obj.metadata?.name}.${randomBytes(8).toString('hex')}`;
      await this.api.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata?.name,
            namespace: obj.metadata?.namespace,
            uid: obj.metadata?.uid,
            resourceVersion: obj.metadata?.resourceVersion,
          },
          type,
          reason,
          message: text,
          source: { component: this.component },
          reportingComponent: this.component,
          reportingInstance: hostname(),
          firstTimestamp: new Date(now),
          lastTimestamp: new Date(now),
          count: 1,
        },
      });
      this.recent.set(foldKey, { name, namespace, count: 1, at: now });
    } catch (err) {
      this.recent.delete(foldKey);
      this.logger?.error('unable to record event', { reason, error: errorMessage(err) });
    }
  }

  private prune(now: number): void {
    for (const [k, v] of this.recent) if (now - v.at > FOLD_WINDOW_MS) this.recent.delete(k);
  }
}
