import type * as k8s from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/**
 * A client-node KubeConfig from the configured file, else its default loading rules (in-cluster, $KUBECONFIG,
 * ~/.kube/config); `context` instead of the current context. Imported lazily: client-node is large, and the hot paths use src/k8s/credentials.ts.
 */
export async function loadKubeConfig(config: Pick<Config, 'kubeconfig'>, context?: string): Promise<k8s.KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromDefault();
  if (context) {
    if (kc.getContextObject(context) === null)
      throw new ConfigError([`kubeconfig ${config.kubeconfig || '(default)'}: context '${context}' not found`]);
    kc.setCurrentContext(context);
  }
  return kc;
}
