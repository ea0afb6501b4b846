// Errors that name the object and carry the API server's reason, so a condition message says what
// to fix without a log.
import type { ChangeSet } from './changeset.ts';

interface StatusBody {
  reason?: string;
  message?: string;
}

/** "Invalid: Deployment.apps "x" is invalid: ..." from an API error, or the error's own message. */
export function reasonOf(err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body as StatusBody | undefined;
  if (body && typeof body === 'object' && body.message)
    return body.reason ? `${body.reason}: ${body.message}` : body.message;
  if (!(err instanceof Error)) return String(err);
  // undici says only "fetch failed"; the cause says what (ECONNREFUSED 127.0.0.1:6443, a TLS error).
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  const detail = cause?.message || cause?.code;
  return detail && !err.message.includes(detail) ? `${err.message}: ${detail}` : err.message;
}

// kubectl treats every 422 and 409 on apply as immutable; that also matches plainly invalid
// objects, which a forced apply would then delete for nothing. These are the wordings of the API
// server's validation, CEL transition rules and admission webhooks for a field that cannot change.
const IMMUTABLE = [/\bis immutable\b/i, /\bimmutable field\b/i, /may not change once set/i, /\bcannot be changed\b/i];

export function isImmutableError(err: unknown): boolean {
  if (typeof (err as { code?: unknown } | null)?.code !== 'number') return false;
  const text = reasonOf(err);
  return IMMUTABLE.some((re) => re.test(text));
}

export interface ObjectFailure {
  subject: string;
  reason: string;
}

/**
 * Objects failed validation and none of them was written. `changeSet` lists earlier stages that
 * were (empty unless the failing objects could only be validated after their CRD or Namespace).
 */
export class ValidationError extends Error {
  readonly failures: ObjectFailure[];
  readonly changeSet: ChangeSet;
  constructor(failures: ObjectFailure[], changeSet: ChangeSet) {
    super(failures.map((f) => `${f.subject} dry-run failed: ${f.reason}`).join('\n'));
    this.name = 'ValidationError';
    this.failures = failures;
    this.changeSet = changeSet;
  }
}

/** A write failed part way; `changeSet` lists what was written before it. */
export class ApplyError extends Error {
  readonly subject: string;
  readonly changeSet: ChangeSet;
  constructor(subject: string, message: string, changeSet: ChangeSet) {
    super(`${subject} ${message}`);
    this.name = 'ApplyError';
    this.subject = subject;
    this.changeSet = changeSet;
  }
}
