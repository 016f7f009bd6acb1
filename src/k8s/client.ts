import * as k8s from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';

/** A KubeConfig from the configured file, else in-cluster credentials, else the client's default loading rules. */
export function loadKubeConfig(config: Pick<Config, 'kubeconfig'>): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromDefault();
  return kc;
}
