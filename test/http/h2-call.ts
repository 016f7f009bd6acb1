import type { ClientHttp2Session } from 'node:http2';

/** An h2 answer: its status and its whole body. */
export interface H2Reply {
  status: number;
  body: string;
}

/** One request on an open h2 session; a body is sent as JSON. Resolves with the whole answer. */
export function h2Call(session: ClientHttp2Session, method: string, path: string, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': method,
      ':path': path,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    stream.end(body);
  });
}
