#!/usr/bin/env bash
# Builds jobs-storage-e2e (scripts/cert-manager/main.go: cert-manager's controller and cainjector control loops,
# github.com/cert-manager/cert-manager pinned by go.mod and go.sum) and caches it, next to the CRDs of the same
# module version (deploy/crds of its module zip) in crds/. The cache directory names the cert-manager version and a
# digest of the sources, so an edit builds anew and an unchanged wrapper is reused.
# stdout: the path of the binary (nothing else); the CRDs are in its directory's crds/. Progress goes to stderr.
#
# Env:
#   JOBS_STORAGE_BIN_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin)
#   GO                    go binary (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE / GOCACHE  honoured as usual.
set -euo pipefail

# Everything lives in main so bash parses the whole file before running it (see control-plane/build.sh).
main() {
  local src
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local cache_root="${JOBS_STORAGE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin}"
  local version digest
  version="$(sed -n 's#^\(require\)\{0,1\}[[:space:]]*github.com/cert-manager/cert-manager \(v[^ ]*\)$#\2#p' "${src}/go.mod" | head -n 1)"
  if [[ -z "${version}" ]]; then
    echo "build.sh: no github.com/cert-manager/cert-manager version in ${src}/go.mod" >&2
    exit 1
  fi
  digest="$(cat "${src}/go.mod" "${src}/go.sum" "${src}/main.go" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
  local dest="${cache_root}/cert-manager-${version}-${digest}"
  local bin="${dest}/jobs-storage-e2e"
  if [[ -x "${bin}" && -f "${dest}/crds/.complete" ]]; then
    printf '%s\n' "${bin}"
    return 0
  fi

  local start_s=${SECONDS}
  log() {
    printf '[cert-manager build +%ss] %s\n' "$((SECONDS - start_s))" "$*" >&2
  }

  local go="${GO:-}"
  if [[ -z "${go}" ]]; then
    if command -v go >/dev/null 2>&1; then
      go="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
      go=/usr/local/go/bin/go
    else
      echo "build.sh: no go toolchain found (set GO=/path/to/go)" >&2
      exit 1
    fi
  fi
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS=

  mkdir -p "${cache_root}" "${dest}"
  exec 8>"${cache_root}/.cert-manager-${version}-${digest}.lock"
  if ! flock -n 8; then
    log "another build holds the lock; waiting"
    flock 8
  fi
  # The holder of the lock may have just finished the same build.
  if [[ ! -x "${bin}" || ! -f "${dest}/crds/.complete" ]]; then
    log "$("${go}" version); github.com/cert-manager/cert-manager ${version} into ${dest}"
    local moddir
    moddir="$(cd "${src}" && "${go}" mod download -json "github.com/cert-manager/cert-manager@${version}" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    if [[ -z "${moddir}" || ! -d "${moddir}/deploy/crds" ]]; then
      echo "build.sh: could not download github.com/cert-manager/cert-manager@${version}" >&2
      exit 1
    fi
    rm -rf "${dest}/crds"
    mkdir -p "${dest}/crds"
    cp "${moddir}"/deploy/crds/*.yaml "${dest}/crds/"
    chmod u+w "${dest}"/crds/*.yaml
    touch "${dest}/crds/.complete"
    log "compiling… (a few minutes on a cold cache)"
    (cd "${src}" && "${go}" build -mod=readonly -trimpath -ldflags "-s -w" -o "${dest}/.jobs-storage-e2e.tmp.$$" .)
    mv -f "${dest}/.jobs-storage-e2e.tmp.$$" "${bin}"
    log "done"
  fi
  exec 8>&-
  printf '%s\n' "${bin}"
}

main "$@"
