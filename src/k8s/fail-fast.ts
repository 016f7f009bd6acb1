import { KubeApi } from './api.js';
import type { LazyListPage, ListPage, WatchEvent } from './api.js';
import type { KubeCredentials } from './credentials.js';
import { describeApiError, statusOf } from './errors.js';

type Query = Record<string, string | number | boolean | undefined>;

/** A request the API server refused to authenticate (401) or authorize (403). */
export interface Refusal {
  status: 401 | 403;
  /** What was asked, in RBAC terms: verb, resource (with its group), namespace, name. */
  request: RequestDescription;
  /** The API server's own message, which names the reason (RBAC, an admission policy, a webhook). */
  message: string;
}

export interface RequestDescription {
  verb: string;
  /** `resource.group`, or the bare resource for the core group; a subresource as `resource/sub`. */
  resource: string;
  namespace?: string;
  name?: string;
}

/**
 * The API client for one-shot commands, which have nothing to wait for: the first 401/403 of a request or list is
 * reported at once (`refused` settles), and the time since the API server was last reachable is tracked, so the
 * command can give up instead of retrying as a daemon does. Watches are left out: a one-shot command needs only its
 * lists, and the informers' watches may outlive them.
 */
export class FailFastApi extends KubeApi {
  private unreachableAt: number | undefined;
  private reportRefusal: (refusal: Refusal) => void = () => undefined;
  /** Settles with the first refusal; never rejects. */
  readonly refused: Promise<Refusal> = new Promise((resolve) => (this.reportRefusal = resolve));
  private lastFailure: unknown;
  /** The API server's address, for messages. */
  readonly serverUrl: string;

  constructor(
    source: KubeCredentials,
    private readonly now: () => number = Date.now,
  ) {
    super(source);
    this.serverUrl = source.server;
  }

  /** Since when no request has reached the API server (connection refused, reset, timed out); undefined if it has. */
  get unreachableSince(): number | undefined {
    return this.unreachableAt;
  }

  /** The last connection failure, for the message that gives up. */
  get lastConnectionError(): string | undefined {
    return this.lastFailure === undefined ? undefined : describeApiError(this.lastFailure).message;
  }

  override async request<T>(
    method: string,
    path: string,
    options: { query?: Query; body?: unknown; contentType?: string; accept?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    try {
      const answer = await super.request<T>(method, path, options);
      this.reached();
      return answer;
    } catch (err) {
      this.failed(method, path, err);
      throw err;
    }
  }

  override listPages<T>(path: string, query: Query & { limit: number }): AsyncGenerator<ListPage<T>>;
  override listPages<T>(path: string, query: Query & { limit: number }, items: 'lazy'): AsyncGenerator<LazyListPage<T>>;
  override async *listPages<T>(
    path: string,
    query: Query & { limit: number },
    items: 'array' | 'lazy' = 'array',
  ): AsyncGenerator<ListPage<T> | LazyListPage<T>> {
    try {
      const pages = items === 'lazy' ? super.listPages<T>(path, query, 'lazy') : super.listPages<T>(path, query);
      for await (const page of pages) {
        this.reached();
        yield page;
      }
    } catch (err) {
      this.failed('GET', path, err);
      throw err;
    }
  }

  override async watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    await super.watch<T>(
      path,
      query,
      (event) => {
        this.reached();
        onEvent(event);
      },
      signal,
    );
  }

  private reached(): void {
    this.unreachableAt = undefined;
    this.lastFailure = undefined;
  }

  private failed(method: string, path: string, err: unknown): void {
    const status = statusOf(err);
    if (status === 401 || status === 403) {
      this.reached();
      this.reportRefusal({ status, request: describeRequest(method, path), message: describeApiError(err).message });
    } else if (status === undefined || status === 0) {
      // Never reached the server, or no answer in time (KubeApiError status 0).
      this.unreachableAt ??= this.now();
      this.lastFailure = err;
    } else {
      this.reached();
    }
  }
}

/** The verb and resource of a REST request, as RBAC names them (`GET` of a collection is `list`). */
export function describeRequest(method: string, path: string): RequestDescription {
  const segments = (path.split('?')[0] ?? '').split('/').filter(Boolean).map(decodeURIComponent);
  let group = '';
  let rest: string[];
  if (segments[0] === 'api') rest = segments.slice(2);
  else {
    group = segments[1] ?? '';
    rest = segments.slice(3);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural = '', name, sub] = rest;
  const resource = `${plural}${group ? `.${group}` : ''}${sub ? `/${sub}` : ''}`;
  const verbs: Record<string, string> = {
    GET: name === undefined ? 'list' : 'get',
    POST: 'create',
    PUT: 'update',
    PATCH: 'patch',
    DELETE: name === undefined ? 'deletecollection' : 'delete',
  };
  return {
    verb: verbs[method.toUpperCase()] ?? method.toLowerCase(),
    resource,
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
  };
}

/** "list cronjobs.batch at the cluster scope", "get configmaps jobs-storage-phase in namespace jobs-storage". */
export function requestText(r: RequestDescription): string {
  const where = r.namespace === undefined ? 'at the cluster scope' : `in namespace ${r.namespace}`;
  return `${r.verb} ${r.resource}${r.name === undefined ? '' : ` ${r.name}`} ${where}`;
}
