#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager (both from the same k8s.io/kubernetes module) and etcd from their
# published Go modules (no prebuilt downloads) and caches them. Only the binaries missing from the cache are built:
# a cache that already holds kube-apiserver and etcd builds kube-controller-manager alone.
# stdout: the directory holding the three binaries (nothing else). Progress goes to stderr.
#
# Env:
#   KUBE_VERSION          k8s.io/kubernetes tag (default below)
#   ETCD_VERSION          go.etcd.io/etcd/server/v3 tag (default below)
#   JOBS_STORAGE_BIN_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin)
#   GO                    go binary (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE / GOCACHE  honoured as usual. A cold build adds ~0.7 GB of modules and ~2.3 GB of build cache; to
#                         avoid keeping the latter, run with GOCACHE="$(mktemp -d)" and delete it afterwards.
set -euo pipefail

# Everything lives in main so bash parses the whole file before running it: a checkout that rewrites this script
# during a multi-minute build must not change what the running build executes.
main() {
  # Newest 1.34 / 3.6 patches on the Go module proxy when this was written; 1.34 declares go 1.24.0 and builds
  # with newer local toolchains.
  KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
  ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"

  cache_root="${JOBS_STORAGE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin}"
  dest="${cache_root}/kube-${KUBE_VERSION}-etcd-${ETCD_VERSION}"

  KUBE_BINARIES=(kube-apiserver kube-controller-manager)

  have() {
    [[ -x "${dest}/$1" ]]
  }
  have_binaries() {
    have kube-apiserver && have kube-controller-manager && have etcd
  }

  if have_binaries; then
    printf '%s\n' "${dest}"
    exit 0
  fi

  start_s=${SECONDS}
  log() {
    printf '[control-plane build +%ss] %s\n' "$((SECONDS - start_s))" "$*" >&2
  }

  GO="${GO:-}"
  if [[ -z "${GO}" ]]; then
    if command -v go >/dev/null 2>&1; then
      GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
      GO=/usr/local/go/bin/go
    else
      echo "build.sh: no go toolchain found (set GO=/path/to/go)" >&2
      exit 1
    fi
  fi

  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  # Setting GOFLAGS from the caller's environment could turn on -mod=vendor etc. and break the wrapper modules.
  export GOFLAGS=

  mkdir -p "${cache_root}"
  lock_file="${cache_root}/.kube-${KUBE_VERSION}-etcd-${ETCD_VERSION}.lock"
  exec 9>"${lock_file}"
  if ! flock -n 9; then
    log "another build holds ${lock_file}; waiting"
    flock 9
  fi

  # The holder of the lock may have just finished the same build.
  if have_binaries; then
    printf '%s\n' "${dest}"
    exit 0
  fi

  mkdir -p "${dest}"
  work="$(mktemp -d "${TMPDIR:-/tmp}/jobs-storage-cp-build.XXXXXX")"
  cleanup() {
    rm -rf "${work}"
    rm -f "${dest}"/.*.tmp.$$
  }
  trap cleanup EXIT

  log "go: $("${GO}" version)"
  log "kube ${KUBE_VERSION}, etcd ${ETCD_VERSION}, cache ${dest}"
  missing_kube=()
  for bin in "${KUBE_BINARIES[@]}"; do
    have "${bin}" || missing_kube+=("${bin}")
  done
  if [[ ${#missing_kube[@]} -gt 0 ]]; then
    build_kube "${missing_kube[@]}"
  fi
  if ! have etcd; then
    build_etcd
  fi

  log "done"
  printf '%s\n' "${dest}"
}

# Builds the named commands of k8s.io/kubernetes (cmd/<name>) in one wrapper module, so they share the module graph
# and the build cache, and moves each into ${dest} once compiled.
build_kube() {
  local wanted=("$@")

  kube_minor_full="${KUBE_VERSION#v1.}"
  kube_minor="${kube_minor_full%%.*}"
  kube_patch="${kube_minor_full#*.}"
  staging_version="v0.${kube_minor}.${kube_patch}"

  log "downloading modules… (k8s.io/kubernetes ${KUBE_VERSION} go.mod)"
  kube_gomod="$(cd "${work}" && "${GO}" mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "${kube_gomod}" || ! -f "${kube_gomod}" ]]; then
    echo "build.sh: could not download k8s.io/kubernetes@${KUBE_VERSION}" >&2
    exit 1
  fi

  # k8s.io/kubernetes pins every staging module at v0.0.0 and replaces it with ./staging/src/...; replace directives of a
  # dependency are ignored, so the wrapper has to point each of them at the published v0.X.Y tag.
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\1#p' "${kube_gomod}")
  if [[ ${#staging[@]} -eq 0 ]]; then
    echo "build.sh: found no staging replace directives in ${kube_gomod}" >&2
    exit 1
  fi
  log "replacing ${#staging[@]} staging modules with ${staging_version}"

  mkdir -p "${work}/kube"
  {
    echo "module jobsstorage.local/kube-apiserver-build"
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

  local pkgs=()
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
    log "compiling ${bin}… (several minutes on a cold cache)"
    (cd "${work}/kube" && "${GO}" build -mod=mod -trimpath -ldflags "${kube_ldflags}" \
      -o "${dest}/.${bin}.tmp.$$" "k8s.io/kubernetes/cmd/${bin}")
    mv -f "${dest}/.${bin}.tmp.$$" "${dest}/${bin}"
    log "compiled ${bin}"
  done
}

build_etcd() {
  mkdir -p "${work}/etcd"
  etcd_go="$(cd "${work}" && "${GO}" mod download -json "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  {
    echo "module jobsstorage.local/etcd-build"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "${etcd_go}")"
    echo
    echo "require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
  } >"${work}/etcd/go.mod"

  log "downloading modules… (etcd dependency graph)"
  (cd "${work}/etcd" && "${GO}" get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2)
  (cd "${work}/etcd" && "${GO}" list -mod=mod -deps go.etcd.io/etcd/server/v3 >/dev/null)

  log "compiling etcd…"
  (cd "${work}/etcd" && "${GO}" build -mod=mod -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" \
    -o "${dest}/.etcd.tmp.$$" go.etcd.io/etcd/server/v3)
  mv -f "${dest}/.etcd.tmp.$$" "${dest}/etcd"
  log "compiled etcd"
}

main "$@"
