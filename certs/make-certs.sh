#!/usr/bin/env bash
# Makes a CA and a serving certificate for the admission webhook with openssl. Nothing here is committed.
#
# Usage: certs/make-certs.sh OUT_DIR NAME [NAME...]
#   NAME  a DNS name (jobs-storage-webhook.jobs-storage.svc) or an IP address (127.0.0.1); the first is the CN.
# Writes OUT_DIR/ca.crt, ca.key (kept if both exist, so a re-run rotates only the serving cert and the caBundle
# stays valid), tls.crt, tls.key (what the webhook reads: config webhook.certFile / keyFile).
# Env: CA_DAYS (default 3650), CERT_DAYS (default 365).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

out="$1"
shift
ca_days="${CA_DAYS:-3650}"
cert_days="${CERT_DAYS:-365}"
mkdir -p "${out}"
umask 077

san=""
for name in "$@"; do
  if [[ "${name}" =~ ^[0-9.]+$ || "${name}" == *:* ]]; then
    san+="${san:+,}IP:${name}"
  else
    san+="${san:+,}DNS:${name}"
  fi
done

# P-256 keys: fast to make, accepted by kube-apiserver's webhook client.
keygen() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

if [[ ! -s "${out}/ca.crt" || ! -s "${out}/ca.key" ]]; then
  keygen "${out}/ca.key"
  openssl req -x509 -new -key "${out}/ca.key" -sha256 -days "${ca_days}" \
    -subj "/CN=jobs-storage-webhook-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "${out}/ca.crt"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
keygen "${tmp}/tls.key"
openssl req -new -key "${tmp}/tls.key" -subj "/CN=$1" -out "${tmp}/tls.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
  "${san}" >"${tmp}/ext.cnf"
openssl x509 -req -in "${tmp}/tls.csr" -CA "${out}/ca.crt" -CAkey "${out}/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days "${cert_days}" -sha256 -extfile "${tmp}/ext.cnf" \
  -out "${tmp}/tls.crt" 2>/dev/null
# Replace, not rewrite in place, so a reloading webhook never reads a half-written file.
chmod 644 "${tmp}/tls.crt" "${out}/ca.crt"
mv -f "${tmp}/tls.key" "${out}/tls.key"
mv -f "${tmp}/tls.crt" "${out}/tls.crt"
echo "${out}/tls.crt (${san}), CA ${out}/ca.crt" >&2
