// A tool writing directly to Kubernetes at a steady pace, for the node tests that count what kube-apiserver made of
// each write while the webhook's pods roll, drain or renew their certificate.
import { setTimeout as sleep } from 'node:timers/promises';
import type * as k8s from '@kubernetes/client-node';

/** Creates CronJobs (each one a call to the record-direct-writes webhook) one every `everyMs` until stopped. */
export class WriteStream {
  created = 0;
  readonly errors: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly api: k8s.BatchV1Api,
    private readonly namespace: string,
    private readonly prefix: string,
    private readonly everyMs: number,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    let next = Date.now();
    for (let i = 1; !this.stopped; i += 1) {
      try {
        await this.api.createNamespacedCronJob({
          namespace: this.namespace,
          body: {
            metadata: { name: `${this.prefix}-${i}` },
            spec: {
              schedule: '17 3 * * *',
              jobTemplate: {
                spec: {
                  template: {
                    spec: {
                      restartPolicy: 'Never',
                      containers: [{ name: 'job', image: 'docker-registry.tools.wmflabs.org/bookworm:latest' }],
                    },
                  },
                },
              },
            },
          },
        });
        this.created += 1;
      } catch (err) {
        this.errors.push(String(err).slice(0, 300));
      }
      next += this.everyMs;
      await sleep(Math.max(0, next - Date.now()));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
