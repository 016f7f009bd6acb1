import type { KubeApi } from './api.js';

/** Who the API server says the caller is (after any impersonation). */
export interface UserInfo {
  username: string;
  groups: string[];
}

interface SelfSubjectReview {
  status?: { userInfo?: { username?: string; groups?: string[] } };
}

/**
 * The caller's identity from a SelfSubjectReview (`kubectl auth whoami`), the only honest source: a kubeconfig names
 * a user entry, not the user the API server authenticates. Every authenticated user may create one
 * (`system:basic-user`). Errors are the caller's to handle: 401 means the credentials were not accepted.
 */
export async function whoAmI(api: Pick<KubeApi, 'request'>, timeoutMs?: number): Promise<UserInfo> {
  const review = await api.request<SelfSubjectReview>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  const info = review.status?.userInfo;
  return { username: info?.username ?? '', groups: info?.groups ?? [] };
}
