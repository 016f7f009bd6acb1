import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface KeyPair {
  certFile: string;
  keyFile: string;
}

export interface LeafOptions {
  commonName: string;
  organizations?: string[];
  usage: 'server' | 'client';
  dnsNames?: string[];
  ipAddresses?: string[];
  days?: number;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { maxBuffer: 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr ?? e.message}`);
  }
}

// '/' and ',' would break the -subj syntax; names here are tool names and fixed strings.
function subject(commonName: string, organizations: string[] = []): string {
  for (const part of [commonName, ...organizations]) {
    if (/[/,\\=+]/.test(part)) throw new Error(`unsupported character in certificate subject: ${part}`);
  }
  return organizations.map((o) => `/O=${o}`).join('') + `/CN=${commonName}`;
}

function serial(): string {
  return '0x' + randomBytes(16).toString('hex').replace(/^./, '1');
}

// P-256 keys: an RSA keygen per identity would dominate seeding time on 2 cores.
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function createCA(dir: string, name: string, commonName: string, days = 2): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    String(days),
    '-subj',
    subject(commonName),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  return { certFile, keyFile };
}

export async function createLeaf(dir: string, name: string, ca: KeyPair, opts: LeafOptions): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const sans = [...(opts.dnsNames ?? []).map((d) => `DNS:${d}`), ...(opts.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${opts.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
  ];
  await writeFile(extFile, ext.join('\n') + '\n');
  await openssl([
    'req',
    '-new',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    csrFile,
    '-subj',
    subject(opts.commonName, opts.organizations),
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-set_serial',
    serial(),
    '-days',
    String(opts.days ?? 2),
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  await Promise.all([rm(csrFile, { force: true }), rm(extFile, { force: true })]);
  return { certFile, keyFile };
}

export interface SigningKey {
  privateKeyFile: string;
  publicKeyFile: string;
}

// RSA rather than EC: RS256 is what every JWT verifier accepts, matching production clusters.
export async function createSigningKey(dir: string, name: string): Promise<SigningKey> {
  const privateKeyFile = join(dir, `${name}.key`);
  const publicKeyFile = join(dir, `${name}.pub`);
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', privateKeyFile]);
  await openssl(['pkey', '-in', privateKeyFile, '-pubout', '-out', publicKeyFile]);
  return { privateKeyFile, publicKeyFile };
}
