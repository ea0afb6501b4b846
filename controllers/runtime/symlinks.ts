// Following symlinks inside a file tree that exists only as a list (a tarball being unpacked, a
// git tree being packed), the way the kernel will once it is on disk.

/** The kernel's own limit on symlinks followed while resolving one path. */
export const MAX_LINK_HOPS = 40;

/**
 * Where the symlink at `link` ends up once every symlink on the way is followed, as path
 * segments below the root; null when it leaves the root (an absolute target, or `..` above the
 * root); 'loop' when resolving it follows more than MAX_LINK_HOPS links. `links` maps each
 * symlink's path (segments joined with '/') to its target.
 */
export function resolveSymlink(links: ReadonlyMap<string, string>, link: string): string[] | null | 'loop' {
  let hops = 0;
  const walk = (from: string[], target: string): string[] | null | 'loop' => {
    if (target.startsWith('/')) return null;
    const parts = [...from];
    for (const segment of target.split('/')) {
      if (segment === '' || segment === '.') continue;
      if (segment === '..') {
        if (parts.length === 0) return null;
        parts.pop();
        continue;
      }
      parts.push(segment);
      const next = links.get(parts.join('/'));
      if (next === undefined) continue;
      if (++hops > MAX_LINK_HOPS) return 'loop';
      const resolved = walk(parts.slice(0, -1), next);
      if (resolved === null || resolved === 'loop') return resolved;
      parts.splice(0, parts.length, ...resolved);
    }
    return parts;
  };
  return walk(link.split('/').slice(0, -1), links.get(link) ?? '');
}
