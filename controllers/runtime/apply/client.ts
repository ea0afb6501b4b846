// A JSON client for objects of any kind. client-node's KubernetesObjectApi runs bodies and
// responses through its typed models, which silently drop fields the models do not know (a field
// newer than the client, a typo): an apply engine must send exactly the manifest and compare
// exactly what the server returned, so requests here carry plain JSON both ways.
import {
  ApiException,
  HttpMethod,
  type Configuration,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { ObjectRef } from './inventory.ts';
import { statusCode } from '../api-errors.ts';
import type { ResourceType } from '../resource.ts';

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

/** An object as the server returned it: plain JSON, timestamps as strings. */
export interface LiveObject extends KubernetesObject {
  status?: Record<string, unknown>;
  [field: string]: unknown;
}

/** client-node types managedFields with Date timestamps; on plain JSON they are strings. */
export function managedFieldsOf(obj: KubernetesObject): ManagedFieldsEntry[] {
  return (obj.metadata?.managedFields ?? []) as unknown as ManagedFieldsEntry[];
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

interface Query {
  [name: string]: string | undefined;
}

/** Constructed by KubeConfig.makeApiClient, so auth, TLS and shared connections come from the KubeConfig. */
class RawApi {
  readonly config: Configuration;
  constructor(config: Configuration) {
    this.config = config;
  }
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

function groupVersionPath(group: string, version: string): string {
  return group ? `/apis/${group}/${version}` : `/api/${version}`;
}

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** How long a discovery document is trusted; a miss refetches it at once anyway. */
const DISCOVERY_TTL_MS = 60_000;

const shared = new WeakMap<KubeConfig, ApiClient>();

/** One client per KubeConfig, so that discovery is fetched once per minute, not once per apply. */
export function apiClientFor(kc: KubeConfig): ApiClient {
  let client = shared.get(kc);
  if (!client) {
    client = new ApiClient(kc);
    shared.set(kc, client);
  }
  return client;
}

export class ApiClient {
  private readonly api: RawApi;
  // One discovery document per group/version; a miss is refetched, so kinds of a CRD established
  // after the first lookup are found.
  private readonly discovery = new Map<string, { at: number; list: Promise<ResourceType[] | undefined> }>();

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(RawApi);
  }

  async request<T>(
    method: HttpMethod,
    path: string,
    query: Query = {},
    body?: { contentType: string; value: unknown },
  ): Promise<T> {
    const { config } = this.api;
    let ctx = config.baseServer.makeRequestContext(path, method);
    ctx.setHeaderParam('Accept', 'application/json');
    for (const [name, value] of Object.entries(query)) if (value !== undefined) ctx.setQueryParam(name, value);
    if (body) {
      ctx.setHeaderParam('Content-Type', body.contentType);
      ctx.setBody(JSON.stringify(body.value));
    }
    await config.authMethods.default?.applySecurityAuthentication(ctx);
    for (const middleware of config.middleware) ctx = await middleware.pre(ctx).toPromise();
    const res = await config.httpApi.send(ctx).toPromise();
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
      const message = (parsed as { message?: string } | undefined)?.message ?? `HTTP ${res.httpStatusCode}`;
      throw new ApiException(res.httpStatusCode, message, parsed, res.headers);
    }
    return parsed as T;
  }

  /** The served resource for apiVersion + kind, or undefined when the server does not serve it. */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceType | undefined> {
    const { group, version } = splitApiVersion(apiVersion);
    const find = (list: ResourceType[] | undefined) => list?.find((r) => r.kind === kind);
    const cached = this.discovery.get(apiVersion);
    if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) {
      const hit = find(await cached.list);
      if (hit) return hit;
    }
    const fresh = this.fetchDiscovery(group, version);
    this.discovery.set(apiVersion, { at: Date.now(), list: fresh });
    return find(await fresh);
  }

  private async fetchDiscovery(group: string, version: string): Promise<ResourceType[] | undefined> {
    try {
      const list = await this.request<{ resources?: Array<{ name: string; kind: string; namespaced: boolean }> }>(
        HttpMethod.GET,
        groupVersionPath(group, version),
      );
      // Subresources (deployments/status) share the kind of their parent.
      return (list.resources ?? [])
        .filter((r) => !r.name.includes('/'))
        .map((r) => ({ group, version, kind: r.kind, plural: r.name, namespaced: r.namespaced }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private path(res: ResourceType, namespace: string, name?: string): string {
    const base = groupVersionPath(res.group, res.version);
    const collection = res.namespaced
      ? `${base}/namespaces/${encodeURIComponent(namespace)}/${res.plural}`
      : `${base}/${res.plural}`;
    return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
  }

  /** The live object, or undefined when it (or its kind) does not exist. */
  async get(res: ResourceType, ref: Pick<ObjectRef, 'namespace' | 'name'>): Promise<LiveObject | undefined> {
    try {
      return await this.request<LiveObject>(HttpMethod.GET, this.path(res, ref.namespace, ref.name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Server-side apply of `obj` as `fieldManager`. */
  apply(
    res: ResourceType,
    obj: KubernetesObject,
    opts: { fieldManager: string; force: boolean; dryRun?: boolean },
  ): Promise<LiveObject> {
    const { namespace = '', name = '' } = obj.metadata ?? {};
    return this.request<LiveObject>(
      HttpMethod.PATCH,
      this.path(res, namespace, name),
      { fieldManager: opts.fieldManager, force: String(opts.force), dryRun: opts.dryRun ? 'All' : undefined },
      { contentType: 'application/apply-patch+yaml', value: obj },
    );
  }

  jsonPatch(
    res: ResourceType,
    ref: Pick<ObjectRef, 'namespace' | 'name'>,
    ops: JsonPatchOp[],
    fieldManager: string,
  ): Promise<LiveObject> {
    return this.request<LiveObject>(
      HttpMethod.PATCH,
      this.path(res, ref.namespace, ref.name),
      { fieldManager },
      { contentType: 'application/json-patch+json', value: ops },
    );
  }

  /** Deletes the object if it still has `uid`; false when it was already gone. */
  async delete(
    res: ResourceType,
    ref: Pick<ObjectRef, 'namespace' | 'name'>,
    uid: string | undefined,
    propagationPolicy = 'Background',
  ): Promise<boolean> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy,
      ...(uid ? { preconditions: { uid } } : {}),
    };
    try {
      await this.request(
        HttpMethod.DELETE,
        this.path(res, ref.namespace, ref.name),
        {},
        { contentType: 'application/json', value: body },
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
