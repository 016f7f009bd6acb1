#!/usr/bin/env bash
# Builds the pinned helm, promtool and prometheus the chart and alert tests use, from their published Go modules (no
# prebuilt downloads), into the same cache as scripts/control-plane/build.sh; and go-peer, the webhook benchmarks' Go
# baseline (test/bench/go-peer: controller-runtime pinned by its go.mod and go.sum), cached under a digest of its
# sources.
# Usage: install.sh [helm|promtool|prometheus|go-peer]...   (no argument: helm and promtool)
# stdout: the path of each requested binary, one a line, in the order asked. Progress goes to stderr.
#
# Env:
#   HELM_VERSION          helm.sh/helm/v3 tag (default below)
#   PROMETHEUS_VERSION    github.com/prometheus/prometheus tag; v0.3XX.Y is Prometheus 3.XX.Y (default below)
#   JOBS_STORAGE_BIN_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin)
#   GO                    go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# Everything lives in main so bash parses the whole file before running it (see control-plane/build.sh).
main() {
  HELM_VERSION="${HELM_VERSION:-v3.19.5}"
  PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
  cache_root="${JOBS_STORAGE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin}"

  local tools=("$@")
  [[ ${#tools[@]} -eq 0 ]] && tools=(helm promtool)
  for tool in "${tools[@]}"; do
    case "${tool}" in
      helm) install_one helm "${HELM_VERSION}" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm \
        "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" "" ;;
      promtool) install_one promtool "${PROMETHEUS_VERSION}" github.com/prometheus/prometheus \
        github.com/prometheus/prometheus/cmd/promtool \
        "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION}" \
        "remove_all_sd" ;;
      # The server the live alert test scrapes the node's pods with: the same module and version as promtool, with
      # every service discovery dropped but kubernetes (plugins/plugin_*.go: `!remove_all_sd || enable_<name>_sd`;
      # file and http SD stay, plugins/minimum.go) and without builtinassets, so no web UI is embedded (the HTTP API
      # is all the test uses).
      prometheus) install_one prometheus "${PROMETHEUS_VERSION}" github.com/prometheus/prometheus \
        github.com/prometheus/prometheus/cmd/prometheus \
        "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION}" \
        "remove_all_sd,enable_kubernetes_sd" ;;
      go-peer) install_go_peer ;;
      *)
        echo "install.sh: unknown tool '${tool}' (expected helm, promtool, prometheus or go-peer)" >&2
        exit 2
        ;;
    esac
  done
}

# find_go: the go binary to build with, into ${go}.
find_go() {
  go="${GO:-}"
  if [[ -z "${go}" ]]; then
    if command -v go >/dev/null 2>&1; then
      go="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
      go=/usr/local/go/bin/go
    else
      echo "install.sh: no go toolchain found (set GO=/path/to/go)" >&2
      exit 1
    fi
  fi
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOFLAGS=
}

# install_go_peer: test/bench/go-peer as its go.mod and go.sum pin it (-mod=readonly: modules come from the Go proxy
# and must match go.sum). The cache directory names the controller-runtime version and a digest of the sources, so
# an edit builds anew and an unchanged peer is reused.
install_go_peer() {
  local src
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../test/bench/go-peer" && pwd)"
  local version digest
  version="$(sed -n 's#^[[:space:]]*sigs.k8s.io/controller-runtime \(v[^ ]*\).*#\1#p' "${src}/go.mod" | head -n 1)"
  digest="$(cat "${src}/go.mod" "${src}/go.sum" "${src}/main.go" | sha256sum | cut -c1-12)"
  local dest="${cache_root}/go-peer-controller-runtime-${version}-${digest}"
  local bin="${dest}/go-peer"
  if [[ -x "${bin}" ]]; then
    printf '%s\n' "${bin}"
    return 0
  fi
  local start_s=${SECONDS}
  local go
  find_go
  mkdir -p "${cache_root}" "${dest}"
  exec 8>"${cache_root}/.go-peer-${version}-${digest}.lock"
  if ! flock -n 8; then
    printf '[tools build go-peer] another build holds the lock; waiting\n' >&2
    flock 8
  fi
  if [[ ! -x "${bin}" ]]; then
    printf '[tools build go-peer +%ss] %s; controller-runtime %s into %s\n' "$((SECONDS - start_s))" \
      "$("${go}" version)" "${version}" "${dest}" >&2
    (cd "${src}" && "${go}" build -mod=readonly -trimpath -ldflags "-s -w" -o "${dest}/.go-peer.tmp.$$" .)
    mv -f "${dest}/.go-peer.tmp.$$" "${bin}"
    printf '[tools build go-peer +%ss] done\n' "$((SECONDS - start_s))" >&2
  fi
  exec 8>&-
  printf '%s\n' "${bin}"
}

# install_one NAME VERSION MODULE PACKAGE LDFLAGS TAGS
install_one() {
  local name="$1" version="$2" module="$3" package="$4" ldflags="$5" tags="$6"
  local dest="${cache_root}/${name}-${version}"
  local bin="${dest}/${name}"
  if [[ -x "${bin}" ]]; then
    printf '%s\n' "${bin}"
    return 0
  fi

  local start_s=${SECONDS}
  log() {
    printf '[tools build %s +%ss] %s\n' "${name}" "$((SECONDS - start_s))" "$*" >&2
  }

  local go
  find_go

  mkdir -p "${cache_root}"
  local lock_file="${cache_root}/.${name}-${version}.lock"
  exec 8>"${lock_file}"
  if ! flock -n 8; then
    log "another build holds ${lock_file}; waiting"
    flock 8
  fi
  # The holder of the lock may have just finished the same build.
  if [[ -x "${bin}" ]]; then
    exec 8>&-
    printf '%s\n' "${bin}"
    return 0
  fi

  mkdir -p "${dest}"
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/jobs-storage-tools-build.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the trap runs after these locals are gone
  trap "rm -rf '${work}'; rm -f '${dest}/.${name}.tmp.$$'" EXIT

  log "go: $("${go}" version); ${module}@${version} into ${dest}"
  local gomod
  gomod="$(cd "${work}" && "${go}" mod download -json "${module}@${version}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "${gomod}" || ! -f "${gomod}" ]]; then
    echo "install.sh: could not download ${module}@${version}" >&2
    exit 1
  fi
  if [[ "${name}" == helm ]]; then
    # What `helm template` and `helm lint` assume without a cluster: the Kubernetes minor helm is built against
    # (helm's Makefile does the same), not client-go's v1.20 fallback, which the chart's kubeVersion refuses.
    local k8s_minor
    k8s_minor="$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "${gomod}" | head -n 1)"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
    done
  fi
  # A wrapper module: `go install pkg@version` refuses modules whose go.mod has replace directives.
  {
    echo "module jobsstorage.local/${name}-build"
    echo
    echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "${gomod}")"
    echo
    echo "require ${module} ${version}"
  } >"${work}/go.mod"
  log "downloading modules…"
  (cd "${work}" && "${go}" get "${module}@${version}" >&2)
  (cd "${work}" && "${go}" list -mod=mod -tags "${tags}" -deps "${package}" >/dev/null)
  log "compiling… (a few minutes on a cold cache)"
  (cd "${work}" && "${go}" build -mod=mod -trimpath -tags "${tags}" -ldflags "${ldflags}" \
    -o "${dest}/.${name}.tmp.$$" "${package}")
  mv -f "${dest}/.${name}.tmp.$$" "${bin}"
  rm -rf "${work}"
  trap - EXIT
  exec 8>&-
  log "done"
  printf '%s\n' "${bin}"
}

main "$@"
