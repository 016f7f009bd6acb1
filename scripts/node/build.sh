#!/usr/bin/env bash
# Prepares this machine to run a node for the local control plane (scripts/control-plane/node.ts):
#   1. kubelet, kube-proxy and kube-scheduler (the control plane runs no scheduler; a node needs one for Deployments),
#      built from the same k8s.io/kubernetes module and version as kube-apiserver (scripts/control-plane/build.sh),
#      cached in a sibling directory of the control plane's binaries;
#   2. containerd, runc, the CNI plugins, iptables and conntrack from Debian's packages (installed only if missing);
#   3. the sandbox (pause) image and a tiny HTTP image, built locally as single-layer OCI archives from static
#      binaries compiled here (no registry), cached next to kubelet.
# Importing the images into a containerd is node.ts's job (each node runs its own containerd).
# stdout: the directory holding kubelet, kube-proxy, kube-scheduler, pause.oci.tar and http-N.oci.tar, with
# pause.ref and http.ref naming each archive's image (nothing else). Progress: stderr.
#
# Env:
#   KUBE_VERSION          k8s.io/kubernetes tag (default: the one scripts/control-plane/build.sh pins)
#   JOBS_STORAGE_BIN_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin)
#   JOBS_STORAGE_NODE_NO_APT=1  never run apt-get (fail if a package is missing)
#   GO                    go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

main() {
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  cp_build="${here}/../control-plane/build.sh"
  if [[ -z "${KUBE_VERSION:-}" ]]; then
    # shellcheck disable=SC2016 # the pattern matches build.sh's literal ${KUBE_VERSION:-…}
    KUBE_VERSION="$(sed -n 's/^[[:space:]]*KUBE_VERSION="\${KUBE_VERSION:-\(v[0-9.]*\)}"$/\1/p' "${cp_build}")"
  fi
  if [[ -z "${KUBE_VERSION}" ]]; then
    echo "node/build.sh: could not read KUBE_VERSION from ${cp_build}" >&2
    exit 1
  fi
  # Tag of the sandbox image that kubelet 1.34 and containerd are told to use; built here, never pulled.
  PAUSE_IMAGE="${PAUSE_IMAGE:-registry.k8s.io/pause:3.10}"
  # Bump with any change to the server's source below: the archive's name carries it, so a cache keeps no stale one.
  HTTP_VERSION=2
  HTTP_IMAGE="jobs-storage.local/e2e-http:${HTTP_VERSION}"

  cache_root="${JOBS_STORAGE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin}"
  dest="${cache_root}/kube-node-${KUBE_VERSION}"

  start_s=${SECONDS}
  log() {
    printf '[node build +%ss] %s\n' "$((SECONDS - start_s))" "$*" >&2
  }

  install_packages

  if have_all; then
    printf '%s\n' "${dest}"
    exit 0
  fi

  GO="${GO:-}"
  if [[ -z "${GO}" ]]; then
    if command -v go >/dev/null 2>&1; then
      GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
      GO=/usr/local/go/bin/go
    else
      echo "node/build.sh: no go toolchain found (set GO=/path/to/go)" >&2
      exit 1
    fi
  fi
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS=

  mkdir -p "${cache_root}"
  exec 9>"${cache_root}/.kube-node-${KUBE_VERSION}.lock"
  if ! flock -n 9; then
    log "another build holds the lock; waiting"
    flock 9
  fi
  if have_all; then
    printf '%s\n' "${dest}"
    exit 0
  fi

  mkdir -p "${dest}"
  work="$(mktemp -d "${TMPDIR:-/tmp}/jobs-storage-node-build.XXXXXX")"
  # shellcheck disable=SC2317 # run by the EXIT trap
  cleanup() {
    rm -rf "${work}"
    rm -f "${dest}"/.*.tmp.$$
  }
  trap cleanup EXIT

  missing=()
  for bin in kubelet kube-proxy kube-scheduler; do
    [[ -x "${dest}/${bin}" ]] || missing+=("${bin}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    build_kube "${missing[@]}"
  fi
  [[ -f "${dest}/pause.oci.tar" ]] || build_pause_image
  [[ -f "${dest}/http-${HTTP_VERSION}.oci.tar" ]] || build_http_image
  printf '%s %s\n' "${PAUSE_IMAGE}" pause.oci.tar >"${dest}/pause.ref"
  printf '%s %s\n' "${HTTP_IMAGE}" "http-${HTTP_VERSION}.oci.tar" >"${dest}/http.ref"

  log "done"
  printf '%s\n' "${dest}"
}

have_all() {
  [[ -x "${dest}/kubelet" && -x "${dest}/kube-proxy" && -x "${dest}/kube-scheduler" && -f "${dest}/pause.oci.tar" && -f "${dest}/http-${HTTP_VERSION}.oci.tar" \
    && -f "${dest}/pause.ref" && "$(cat "${dest}/http.ref" 2>/dev/null)" == "${HTTP_IMAGE} http-${HTTP_VERSION}.oci.tar" ]]
}

# Debian's containerd (1.6), runc, CNI plugins (/usr/lib/cni), iptables, conntrack; gcc for the static images.
install_packages() {
  local want=() pkg
  command -v containerd >/dev/null 2>&1 || want+=(containerd)
  command -v runc >/dev/null 2>&1 || want+=(runc)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback && -x /usr/lib/cni/portmap ]] \
    || want+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || want+=(iptables)
  command -v conntrack >/dev/null 2>&1 || want+=(conntrack)
  command -v gcc >/dev/null 2>&1 || want+=(gcc libc6-dev)
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a ]] || want+=(libc6-dev)
  if [[ ${#want[@]} -eq 0 ]]; then
    return 0
  fi
  if [[ "${JOBS_STORAGE_NODE_NO_APT:-}" == 1 ]]; then
    echo "node/build.sh: missing packages ${want[*]} and JOBS_STORAGE_NODE_NO_APT=1" >&2
    exit 1
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "node/build.sh: missing packages ${want[*]}; installing them needs root" >&2
    exit 1
  fi
  log "installing ${want[*]} with apt-get"
  # Another process (another helper's build) may hold apt's locks: wait for them rather than fail.
  apt_retry apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt_retry apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${want[@]}" >&2
  for pkg in containerd runc; do
    command -v "${pkg}" >/dev/null 2>&1 || { echo "node/build.sh: ${pkg} still missing after apt-get" >&2; exit 1; }
  done
  # The Debian package starts containerd's system service; node.ts runs a containerd of its own (own socket, root and
  # state), so the system one is left as the package set it up.
}

apt_retry() {
  local i
  for i in $(seq 1 60); do
    if "$@" >&2 2>"${TMPDIR:-/tmp}/node-build-apt.$$"; then
      rm -f "${TMPDIR:-/tmp}/node-build-apt.$$"
      return 0
    fi
    if grep -q 'Could not get lock\|Unable to lock' "${TMPDIR:-/tmp}/node-build-apt.$$"; then
      log "apt is locked by another process; retrying ($i)"
      sleep 5
      continue
    fi
    cat "${TMPDIR:-/tmp}/node-build-apt.$$" >&2
    rm -f "${TMPDIR:-/tmp}/node-build-apt.$$"
    return 1
  done
  echo "node/build.sh: apt stayed locked for 5 minutes" >&2
  return 1
}

build_kube() {
  local wanted=("$@")
  local kube_minor_full kube_minor kube_patch staging_version kube_gomod staging pkgs bin build_date kube_ldflags pkg
  kube_minor_full="${KUBE_VERSION#v1.}"
  kube_minor="${kube_minor_full%%.*}"
  kube_patch="${kube_minor_full#*.}"
  staging_version="v0.${kube_minor}.${kube_patch}"

  log "downloading modules… (k8s.io/kubernetes ${KUBE_VERSION} go.mod)"
  kube_gomod="$(cd "${work}" && "${GO}" mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "${kube_gomod}" || ! -f "${kube_gomod}" ]]; then
    echo "node/build.sh: could not download k8s.io/kubernetes@${KUBE_VERSION}" >&2
    exit 1
  fi
  # Same wrapper module as the control plane's build: the staging modules at their published v0.X.Y tags.
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\1#p' "${kube_gomod}")
  if [[ ${#staging[@]} -eq 0 ]]; then
    echo "node/build.sh: found no staging replace directives in ${kube_gomod}" >&2
    exit 1
  fi
  mkdir -p "${work}/kube"
  {
    echo "module jobsstorage.local/kube-node-build"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "${kube_gomod}")"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do
      echo "	${m} => ${m} ${staging_version}"
    done
    echo ")"
  } >"${work}/kube/go.mod"

  pkgs=()
  for bin in "${wanted[@]}"; do
    pkgs+=("k8s.io/kubernetes/cmd/${bin}")
  done
  log "downloading modules… (dependency graph of ${wanted[*]})"
  (cd "${work}/kube" && "${GO}" get "k8s.io/kubernetes@${KUBE_VERSION}" >&2)
  (cd "${work}/kube" && "${GO}" list -mod=mod -deps "${pkgs[@]}" >/dev/null)

  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  kube_ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
    kube_ldflags+=" -X ${pkg}.gitMajor=1"
    kube_ldflags+=" -X ${pkg}.gitMinor=${kube_minor}"
    kube_ldflags+=" -X ${pkg}.gitTreeState=clean"
    kube_ldflags+=" -X ${pkg}.buildDate=${build_date}"
  done
  for bin in "${wanted[@]}"; do
    local t0=${SECONDS}
    log "compiling ${bin}… (several minutes on a cold cache)"
    (cd "${work}/kube" && "${GO}" build -mod=mod -trimpath -ldflags "${kube_ldflags}" \
      -o "${dest}/.${bin}.tmp.$$" "k8s.io/kubernetes/cmd/${bin}")
    mv -f "${dest}/.${bin}.tmp.$$" "${dest}/${bin}"
    log "compiled ${bin} in $((SECONDS - t0))s"
  done
}

# Writes a single-layer OCI image layout holding rootfs/ as its only layer, and tars it (an archive that
# `ctr images import` reads). $1 rootfs dir, $2 output tar, $3 image reference, $4 JSON array of the entrypoint.
oci_archive() {
  local rootfs="$1" out="$2" ref="$3" entrypoint="$4"
  local layout
  layout="${work}/oci-$(basename "${out}" .oci.tar)"
  local layer_tar="${work}/layer.$$.tar"
  rm -rf "${layout}"
  mkdir -p "${layout}/blobs/sha256"
  # Reproducible layer: fixed owner, mode-preserving, sorted, mtime 0.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "${rootfs}" -cf "${layer_tar}" .
  local diff_id layer_digest layer_size
  diff_id="$(sha256sum "${layer_tar}" | cut -d' ' -f1)"
  gzip -n -9 -c "${layer_tar}" >"${layer_tar}.gz"
  layer_digest="$(sha256sum "${layer_tar}.gz" | cut -d' ' -f1)"
  layer_size="$(stat -c %s "${layer_tar}.gz")"
  mv "${layer_tar}.gz" "${layout}/blobs/sha256/${layer_digest}"
  rm -f "${layer_tar}"

  local arch
  arch="$("${GO}" env GOARCH)"
  local config
  config="$(printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":%s,"User":"65534:65534","WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/node/build.sh"}]}' \
    "${arch}" "${entrypoint}" "${diff_id}")"
  local config_digest config_size
  printf '%s' "${config}" >"${layout}/config.json"
  config_digest="$(sha256sum "${layout}/config.json" | cut -d' ' -f1)"
  config_size="$(stat -c %s "${layout}/config.json")"
  mv "${layout}/config.json" "${layout}/blobs/sha256/${config_digest}"

  local manifest manifest_digest manifest_size
  manifest="$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "${config_digest}" "${config_size}" "${layer_digest}" "${layer_size}")"
  printf '%s' "${manifest}" >"${layout}/manifest.json"
  manifest_digest="$(sha256sum "${layout}/manifest.json" | cut -d' ' -f1)"
  manifest_size="$(stat -c %s "${layout}/manifest.json")"
  mv "${layout}/manifest.json" "${layout}/blobs/sha256/${manifest_digest}"

  printf '{"imageLayoutVersion":"1.0.0"}' >"${layout}/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "${manifest_digest}" "${manifest_size}" "${ref}" "${ref##*:}" >"${layout}/index.json"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "${layout}" -cf "${dest}/.$(basename "${out}").tmp.$$" .
  mv -f "${dest}/.$(basename "${out}").tmp.$$" "${out}"
  log "wrote ${out} (${ref}, layer sha256:${layer_digest:0:12}, $(stat -c %s "${out}") bytes)"
}

# The sandbox image: Kubernetes' own build/pause/linux/pause.c from the module cache, statically linked.
build_pause_image() {
  local kube_dir src rootfs
  kube_dir="$(cd "${work}" && "${GO}" mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  src="${kube_dir}/build/pause/linux/pause.c"
  if [[ ! -f "${src}" ]]; then
    echo "node/build.sh: ${src} not found in the module cache" >&2
    exit 1
  fi
  rootfs="${work}/pause-rootfs"
  mkdir -p "${rootfs}"
  log "compiling pause from ${src}"
  gcc -Os -static -Wall -Werror -DVERSION="${PAUSE_IMAGE##*:}-jobs-storage" -o "${rootfs}/pause" "${src}"
  strip "${rootfs}/pause"
  oci_archive "${rootfs}" "${dest}/pause.oci.tar" "${PAUSE_IMAGE}" '["/pause"]'
}

# A tiny HTTP server for the e2e test's Service: static Go binary (standard library only), answers every GET with
# its pod name and the request path, /healthz with "ok", and /apiserver with who the apiserver says the pod is: a
# SelfSubjectReview through the `kubernetes` Service with the pod's ServiceAccount token, as an in-cluster client.
build_http_image() {
  local rootfs="${work}/http-rootfs"
  mkdir -p "${rootfs}" "${work}/http-src"
  cat >"${work}/http-src/main.go" <<'GO'
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

// whoAmI posts a SelfSubjectReview to the apiserver at KUBERNETES_SERVICE_HOST:PORT with the mounted token.
func whoAmI() (int, string, error) {
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return 0, "", err
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return 0, "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc"}},
	}
	url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) +
		"/apis/authentication.k8s.io/v1/selfsubjectreviews"
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, string(out), err
}

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	host, _ := os.Hostname()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/apiserver", func(w http.ResponseWriter, _ *http.Request) {
		status, body, err := whoAmI()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "jobs-storage e2e http from %s path %s\n", host, r.URL.Path)
	})
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
GO
  printf 'module jobsstorage.local/e2e-http\n\ngo 1.22\n' >"${work}/http-src/go.mod"
  log "compiling the e2e HTTP server"
  (cd "${work}/http-src" && "${GO}" build -trimpath -ldflags "-s -w" -o "${rootfs}/http" .)
  oci_archive "${rootfs}" "${dest}/http-${HTTP_VERSION}.oci.tar" "${HTTP_IMAGE}" '["/http"]'
}

main "$@"; exit 0
