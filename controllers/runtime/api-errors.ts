// What the API server's answers mean, for every client in the project.
import { STATUS_CODES } from 'node:http';
import { ApiException } from '@kubernetes/client-node';

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

/** The parts of a meta/v1 Status the API server sends with every refusal. */
export interface ApiStatus {
  message?: string;
  reason?: string;
  code?: number;
}

/**
 * The Status an ApiException carries: the generated clients keep the body as text, our own JSON
 * client (apply/client.ts) keeps it parsed.
 */
export function apiStatusOf(err: unknown): ApiStatus | undefined {
  if (!(err instanceof ApiException)) return undefined;
  let body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (!body || typeof body !== 'object') return undefined;
  const { message, reason, code } = body as Record<string, unknown>;
  return {
    ...(typeof message === 'string' && message ? { message } : {}),
    ...(typeof reason === 'string' && reason ? { reason } : {}),
    ...(typeof code === 'number' ? { code } : {}),
  };
}

/**
 * One line for a condition message or a log. An API error is the Status message, which names
 * what was refused ('secrets "creds" is forbidden: User "…" cannot get resource "secrets" in API
 * group "" in the namespace "apps"'). client-node's own text for it also holds the whole body and
 * the response headers: a body may echo what was sent, so it never reaches a message.
 */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const status = apiStatusOf(err);
    if (status?.message) return status.message;
    return `the API server answered ${err.code} ${STATUS_CODES[err.code] ?? ''}`.trim();
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** What is refused when the API server answers 403 to `verb` on `resource`, in the API server's words. */
export function refusal(
  verb: string,
  resource: { plural: string; group: string },
  namespace: string | undefined,
): string {
  const where = namespace ? `in the namespace "${namespace}"` : 'at the cluster scope';
  return `forbidden: cannot ${verb} resource "${resource.plural}" in API group "${resource.group}" ${where}`;
}

/** What `read` gives, or undefined when the object does not exist (404); other errors pass. */
export async function unlessNotFound<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}
