// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is free when
// its holder has not renewed it for leaseDuration as observed by our own clock (never by
// comparing clocks across machines), the leader renews every retryPeriod and steps down when it
// could not renew for renewDeadline, and on shutdown it releases the lease so a standby takes
// over at its next retry instead of after a full lease duration.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { errorMessage, statusCode } from './api-errors.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface Observed {
  holder: string;
  renewTime: string;
  at: number;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly opts: LeaderElectionOptions;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private observed: Observed | undefined;
  private leading = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private inflight: Promise<boolean> | undefined;

  constructor(kc: KubeConfig, opts: LeaderElectionOptions, logger: Logger, metrics?: Metrics) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.opts = opts;
    this.logger = logger.with({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.metrics = metrics;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Blocks until this instance leads (resolves true) or stop() is called (resolves false).
   * Afterwards call keepLeading() to renew.
   */
  async acquire(): Promise<boolean> {
    this.logger.info('attempting to acquire leader lease');
    while (!this.stopped) {
      if (await this.attempt()) {
        this.leading = true;
        this.metrics?.leader.set({ name: this.opts.name }, 1);
        this.logger.info('successfully acquired lease');
        return true;
      }
      await this.sleep(this.opts.retryPeriodMs);
    }
    return false;
  }

  /** Renews until stop() (resolves 'stopped') or until a renewal deadline passes (resolves 'lost'). */
  async keepLeading(): Promise<'stopped' | 'lost'> {
    let lastRenew = Date.now();
    while (!this.stopped) {
      await this.sleep(this.opts.retryPeriodMs);
      if (this.stopped) break;
      if (await this.attempt()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew > this.opts.renewDeadlineMs) {
        this.leading = false;
        this.metrics?.leader.set({ name: this.opts.name }, 0);
        this.logger.error('leader lease lost');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Stops trying; when leading, gives the lease up so that a standby can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    // A renewal still on the wire would overwrite the release below; let it land first.
    await this.inflight;
    if (!this.leading) return;
    this.leading = false;
    this.metrics?.leader.set({ name: this.opts.name }, 0);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
        if (lease.spec?.holderIdentity !== this.opts.identity) return;
        lease.spec = {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()) as unknown as Date,
        };
        await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
        this.logger.info('released leader lease');
        return;
      } catch (err) {
        this.logger.error('could not release leader lease', { error: errorMessage(err), attempt });
      }
    }
  }

  private attempt(): Promise<boolean> {
    this.inflight = this.tryAcquireOrRenew();
    return this.inflight;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const spec = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
      renewTime: microTime(now) as unknown as Date,
    };
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
    } catch (err) {
      if (statusCode(err) !== 404) {
        this.failed('cannot read lease', err);
        return false;
      }
      try {
        await this.api.createNamespacedLease({
          namespace: this.opts.namespace,
          body: {
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec: { ...spec, acquireTime: spec.renewTime, leaseTransitions: 0 },
          },
        });
        this.observe(this.opts.identity, String(spec.renewTime));
        return true;
      } catch (createErr) {
        this.failed('cannot create lease', createErr);
        return false;
      }
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = String(lease.spec?.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observe(holder, renewTime);
    }
    const heldByOther = holder !== '' && holder !== this.opts.identity;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (heldByOther && Date.now() - this.observed!.at < durationMs) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === this.opts.identity ? 0 : 1);
    lease.spec = {
      ...lease.spec,
      ...spec,
      leaseTransitions: transitions,
      acquireTime: holder === this.opts.identity ? lease.spec?.acquireTime : spec.renewTime,
    };
    try {
      // replace carries the resourceVersion we read, so two candidates cannot both win.
      await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
      this.observe(this.opts.identity, String(spec.renewTime));
      return true;
    } catch (err) {
      this.failed('cannot update lease', err);
      return false;
    }
  }

  /**
   * A lost race or a blip is routine; a refusal (401/403) keeps this replica from ever leading,
   * so it is an error that names what was refused.
   */
  private failed(what: string, err: unknown): void {
    const code = statusCode(err);
    const refused = code === 401 || code === 403;
    this.logger[refused ? 'error' : 'debug'](what, { error: errorMessage(err) });
  }

  private observe(holder: string, renewTime: string): void {
    this.observed = { holder, renewTime, at: Date.now() };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** MicroTime wants exactly six fractional digits. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
