// What the git transports share. Credentials come from the GitRepository's Secret and must never
// reach logs, events, status or URLs.
import type { HttpClient } from 'isomorphic-git';
import type { ProxyConfig } from './proxy.ts';

export interface GitCredentials {
  /** HTTP basic auth. */
  username?: string;
  password?: string;
  /** HTTP bearer token (Authorization: Bearer …). */
  bearerToken?: string;
  /** PEM CA bundle (Secret key ca.crt) trusted for HTTPS in addition to the system roots, as go-git does. */
  caPem?: string;
  /** SSH private key in OpenSSH or PEM format (Secret key identity), with optional passphrase (password). */
  identity?: string;
  identityPassphrase?: string;
  /** known_hosts content (Secret key known_hosts); SSH refuses hosts it does not list. */
  knownHosts?: string;
}

export interface TransportOptions {
  /** Per-operation deadline (spec.timeout). */
  timeoutMs: number;
  /** Abort everything once the reconcile gives up. */
  signal?: AbortSignal;
  /** Stop reading a response body after this many bytes (a repository size limit). */
  maxBytes?: number;
  /** An HTTP(S) proxy for every connection (spec.proxySecretRef). */
  proxy?: ProxyConfig;
}

/**
 * A transport for isomorphic-git: `url` is what to pass as isomorphic-git's url (for SSH, a
 * stand-in http URL that `http` recognises), `http` is its HttpClient.
 */
export interface Transport {
  url: string;
  http: HttpClient;
  close(): void;
}

/** Errors a transport throws carry a kind, so the reconciler can pick the condition reason. */
export type TransportErrorKind =
  | 'auth'
  | 'hostkey'
  | 'unreachable'
  | 'timeout'
  | 'too-large'
  | 'protocol'
  | 'not-found';

export class TransportError extends Error {
  readonly kind: TransportErrorKind;

  constructor(kind: TransportErrorKind, message: string) {
    super(message);
    this.name = 'TransportError';
    this.kind = kind;
  }
}
