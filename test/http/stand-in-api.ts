import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, createLeaf } from '../../scripts/control-plane/pki.js';

/** A local HTTPS server standing in for the API server, with its own CA and a directory for the test's files. */
export interface StandInApi {
  server: https.Server;
  /** `https://127.0.0.1:<port>` */
  address: string;
  /** The CA that signed the server's certificate, as PEM. */
  ca: Buffer;
  /** A fresh directory the test may write into; removed by `close`. */
  dir: string;
  /** Cuts every connection, stops listening and removes `dir`. */
  close(): void;
}

/** Starts a stand-in API server on 127.0.0.1 that answers every request with `handler`. */
export async function startStandInApi(name: string, handler: RequestListener): Promise<StandInApi> {
  const dir = mkdtempSync(join(tmpdir(), `jobs-storage-${name}-`));
  const ca = await createCA(dir, 'ca', `${name} test CA`);
  const leaf = await createLeaf(dir, 'server', ca, {
    commonName: '127.0.0.1',
    usage: 'server',
    ipAddresses: ['127.0.0.1'],
  });
  const server = https.createServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, handler);
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    address: `https://127.0.0.1:${port}`,
    ca: readFileSync(ca.certFile),
    dir,
    close: () => {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
