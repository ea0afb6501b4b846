// Picks the transport for a GitRepository URL. Credentials travel only in the Secret-derived
// GitCredentials: a URL that carries them is refused rather than used, because URLs end up in
// status, events and logs.
import { openHttpTransport } from './transport-http.ts';
import { openSshTransport } from './transport-ssh.ts';
import { TransportError, type GitCredentials, type Transport, type TransportOptions } from './types.ts';

/**
 * A transport for `url` (`http://`, `https://` or `ssh://[user@]host[:port]/path`). Throws a
 * TransportError: 'protocol' for an unsupported or malformed URL, 'hostkey' for SSH without
 * known_hosts, 'auth' for an SSH identity that cannot be read or decrypted. Call `close()` in a
 * `finally`, failed or not: an SSH transport keeps its connection open for the next request.
 */
export function openTransport(url: string, creds: GitCredentials, opts: TransportOptions): Transport {
  const parsed = parseUrl(url);
  switch (parsed.protocol) {
    case 'http:':
    case 'https:':
      if (parsed.username || parsed.password) {
        throw new TransportError(
          'protocol',
          `the URL of ${parsed.host} contains credentials; ` +
            'put them in the Secret (username, password or bearerToken) instead',
        );
      }
      return openHttpTransport(parsed, creds, opts);
    case 'ssh:':
      if (parsed.password) {
        throw new TransportError(
          'protocol',
          `the URL of ${parsed.host} contains a password; SSH authenticates with the Secret's identity`,
        );
      }
      return openSshTransport(parsed, creds, opts);
    default:
      throw new TransportError(
        'protocol',
        `unsupported URL scheme "${parsed.protocol.replace(/:$/, '')}"; use https://, http:// or ssh://`,
      );
  }
}

function parseUrl(url: string): URL {
  // git accepts scp-like `git@host:org/repo.git`; Flux and Tide want the ssh:// form.
  if (/^([^/@:]+@)?[^/@:]+:(?!\/\/)/.test(url)) {
    throw new TransportError(
      'protocol',
      'unsupported scp-like SSH address; write it as ssh://user@host/path (ssh://user@host:port/path)',
    );
  }
  try {
    return new URL(url);
  } catch {
    // The text is not echoed: a malformed URL may still hold a secret.
    throw new TransportError('protocol', 'the repository URL is not a valid URL');
  }
}
