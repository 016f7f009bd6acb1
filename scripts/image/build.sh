#!/usr/bin/env bash
# Builds the product image from the project's Dockerfile, unchanged, without any container registry:
#   1. the base image the Dockerfile's FROM lines name (docker.io/library/node:<major>-bookworm-slim), made here from
#      Debian's packages (mmdebstrap --variant=minbase plus ca-certificates and libatomic1, which node 26 links
#      against; docs and man pages left out as Debian's slim images do), the Node binary of the runtime the product
#      ships (.node-version, through scripts/tools/node.mjs: the npm registry's node-linux-<arch> package) at
#      /usr/local/bin/node, and the npm that Node release bundles (the npm registry's `npm` package) at
#      /usr/local/lib/node_modules/npm with the npm and npx links in /usr/local/bin; PATH, NODE_VERSION and CMD set as
#      a node image sets them. Tagged with the FROM name in buildah's local storage and cached as an OCI archive keyed
#      by the Debian suite, the node and npm versions and this recipe's revision;
#   2. the Dockerfile, with `buildah bud --pull=never --isolation chroot --network=host` (npm ci reaches the npm
#      registry, trusting what the host trusts), tagged localhost/toolforge/jobs-storage:<package.json version>-local
#      and labelled with a digest of its inputs (docs/adr/0007-local-image-build.md says why each flag);
#   3. a docker-archive of it in the cache, for `ctr -n k8s.io images import`.
# Each step is skipped when its result is already there (in buildah's storage, else restored from the cache).
# Packages it needs (buildah, mmdebstrap; runc for test/deploy/image.test.ts, which runs the image) are installed
# with apt-get when missing.
#
# stdout: two lines, the image reference, then the archive path (nothing else). Progress and sizes go to stderr.
#
# Env:
#   JOBS_STORAGE_BIN_DIR         cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin); the
#                                archives go to its image/ subdirectory, node to node-v<version> as node.mjs puts it
#   JOBS_STORAGE_NODE_VERSION    the node to ship (default: .node-version), as for scripts/tools/node.mjs
#   JOBS_STORAGE_NPM_VERSION     the npm to ship (default: the one that node release bundles, read from its changelog)
#   JOBS_STORAGE_IMAGE_NO_APT=1  never run apt-get (fail if a package is missing)
#   DEBIAN_SUITE                 the base's Debian suite (default bookworm: the FROM tag names it)
set -euo pipefail

# Everything lives in main so bash parses the whole file before running it (see control-plane/build.sh).
main() {
  repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
  # Bump when the base's recipe below changes, so cached bases made by the old one are not reused.
  BASE_RECIPE=1
  LABEL_BASE=org.toolforge.jobs-storage.base
  LABEL_INPUTS=org.toolforge.jobs-storage.inputs

  cache_root="${JOBS_STORAGE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toolforge-jobs-storage/bin}"
  image_dir="${cache_root}/image"

  start_s=${SECONDS}
  log() {
    printf '[image build +%ss] %s\n' "$((SECONDS - start_s))" "$*" >&2
  }

  install_packages

  node_version="${JOBS_STORAGE_NODE_VERSION:-$(tr -d '[:space:]' <"${repo_root}/.node-version")}"
  node_version="${node_version#v}"
  node_major="${node_version%%.*}"
  base_ref="$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "${repo_root}/Dockerfile" | sort -u)"
  if [[ "${base_ref}" != "docker.io/library/node:${node_major}-${DEBIAN_SUITE}-slim" ]]; then
    echo "image/build.sh: the Dockerfile's FROM lines name '${base_ref//$'\n'/, }'," \
      "not docker.io/library/node:${node_major}-${DEBIAN_SUITE}-slim (.node-version ${node_version})" >&2
    exit 1
  fi
  version="$(node -p "require('${repo_root}/package.json').version")"
  image_ref="localhost/toolforge/jobs-storage:${version}-local"

  mkdir -p "${image_dir}"
  exec 9>"${image_dir}/.build.lock"
  if ! flock -n 9; then
    log "another build holds ${image_dir}/.build.lock; waiting"
    flock 9
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/jobs-storage-image-build.XXXXXX")"
  cleanup() {
    rm -rf "${work}"
    if [[ -n "${base_ctr:-}" ]]; then buildah rm "${base_ctr}" >/dev/null 2>&1 || true; fi
  }
  trap cleanup EXIT

  log "buildah $(buildah --version | awk '{print $3}'), storage driver $(buildah info --format '{{.store.GraphDriverName}}')"
  npm_version="$(npm_version_of "${node_version}")"
  ensure_base
  ensure_image
  report_sizes
  printf '%s\n%s\n' "${image_ref}" "${archive}"
}

# install_packages: buildah (Debian's 1.28) and mmdebstrap for the build; runc, the OCI runtime containerd uses, for
# running the image as deployed (test/deploy/image.test.ts). Not crun: Debian's crun 1.8 refuses this machine's
# hybrid cgroup layout (v1 controllers plus /sys/fs/cgroup/unified). apt-get update runs once, only when something is
# missing.
install_packages() {
  local want=()
  command -v buildah >/dev/null 2>&1 || want+=(buildah)
  command -v mmdebstrap >/dev/null 2>&1 || want+=(mmdebstrap)
  command -v runc >/dev/null 2>&1 || want+=(runc)
  [[ ${#want[@]} -eq 0 ]] && return 0
  if [[ "${JOBS_STORAGE_IMAGE_NO_APT:-}" == 1 ]]; then
    echo "image/build.sh: missing packages ${want[*]} and JOBS_STORAGE_IMAGE_NO_APT=1" >&2
    exit 1
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "image/build.sh: missing packages ${want[*]}; installing them needs root" >&2
    exit 1
  fi
  log "installing ${want[*]} with apt-get"
  # Another process (another script's apt-get) may hold apt's locks: wait for them rather than fail.
  apt_retry apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt_retry apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${want[@]}"
  local pkg
  for pkg in buildah mmdebstrap runc; do
    command -v "${pkg}" >/dev/null 2>&1 || { echo "image/build.sh: ${pkg} still missing after apt-get" >&2; exit 1; }
  done
}

# apt_retry CMD…: retries while apt's lock is held by another process (up to 10 minutes); any other failure is final.
apt_retry() {
  local i out="${TMPDIR:-/tmp}/image-build-apt.$$"
  for i in $(seq 1 60); do
    if "$@" >&2 2>"${out}"; then
      rm -f "${out}"
      return 0
    fi
    if ! grep -q 'Could not get lock\|Unable to lock\|Unable to acquire' "${out}"; then
      cat "${out}" >&2
      rm -f "${out}"
      return 1
    fi
    log "apt is locked by another process; waiting (${i}/60)"
    sleep 10
  done
  cat "${out}" >&2
  rm -f "${out}"
  return 1
}

# npm_version_of NODE_VERSION: JOBS_STORAGE_NPM_VERSION, else the npm that node release bundles. Node's changelog
# (shipped in the node-linux-<arch> package, newest entry first) records every "upgrade npm to X"; the first one is
# the bundled npm. Read once per node version, then kept in the cache.
npm_version_of() {
  local node="$1"
  if [[ -n "${JOBS_STORAGE_NPM_VERSION:-}" ]]; then
    printf '%s\n' "${JOBS_STORAGE_NPM_VERSION}"
    return 0
  fi
  local memo="${image_dir}/node-v${node}.npm-version"
  if [[ -s "${memo}" ]]; then
    cat "${memo}"
    return 0
  fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "image/build.sh: no node-linux package for $(uname -m)" >&2; exit 1 ;;
  esac
  log "reading the npm that node ${node} bundles from node-linux-${arch}@${node}'s changelog"
  mkdir -p "${work}/node-pkg"
  local tgz
  tgz="$(cd "${work}/node-pkg" && npm pack "node-linux-${arch}@${node}" --loglevel=error | tail -n 1)"
  tar -xzf "${work}/node-pkg/${tgz}" -C "${work}/node-pkg" package/CHANGELOG.md
  local npm
  npm="$(sed -n 's/.*deps\*\*: upgrade npm to \([0-9][0-9.]*[0-9]\).*/\1/p' "${work}/node-pkg/package/CHANGELOG.md" \
    | head -n 1)"
  rm -rf "${work}/node-pkg"
  if [[ ! "${npm}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "image/build.sh: found no 'upgrade npm to' entry in node ${node}'s changelog; set JOBS_STORAGE_NPM_VERSION" >&2
    exit 1
  fi
  printf '%s\n' "${npm}" >"${memo}"
  printf '%s\n' "${npm}"
}

# label_of IMAGE LABEL: the label's value on IMAGE in buildah's storage (empty if the image or the label is missing).
label_of() {
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# restore ARCHIVE_TRANSPORT:PATH REF: loads an image archive from the cache into buildah's storage and tags it REF.
restore() {
  local id
  id="$(buildah pull --quiet "$1")"
  buildah tag "${id}" "$2"
}

ensure_base() {
  local key="${DEBIAN_SUITE}-node${node_version}-npm${npm_version}-r${BASE_RECIPE}"
  local base_archive="${image_dir}/node-base-${key}.oci.tar"
  if [[ "$(label_of "${base_ref}" "${LABEL_BASE}")" == "${key}" ]]; then
    log "base ${base_ref} (${key}) is in buildah's storage"
    return 0
  fi
  if [[ -f "${base_archive}" ]]; then
    log "restoring base ${base_ref} from ${base_archive}"
    restore "oci-archive:${base_archive}" "${base_ref}"
    return 0
  fi

  local t0=${SECONDS}
  local node_bin
  node_bin="$(JOBS_STORAGE_BIN_DIR="${cache_root}" node "${repo_root}/scripts/tools/node.mjs" path "${node_version}")/node"
  log "building base ${base_ref}: Debian ${DEBIAN_SUITE} minbase + ca-certificates, node ${node_version}, npm ${npm_version}"

  # /usr/local as a node image lays it out.
  local stage="${work}/usr-local"
  mkdir -p "${stage}/bin" "${stage}/lib/node_modules" "${work}/npm-pkg"
  install -m 0755 "${node_bin}" "${stage}/bin/node"
  local npm_tgz
  npm_tgz="$(cd "${work}/npm-pkg" && npm pack "npm@${npm_version}" --loglevel=error | tail -n 1)"
  tar -xzf "${work}/npm-pkg/${npm_tgz}" -C "${work}/npm-pkg"
  mv "${work}/npm-pkg/package" "${stage}/lib/node_modules/npm"
  chown -R 0:0 "${stage}"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${stage}/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "${stage}/bin/npx"
  local got
  got="$("${stage}/bin/node" "${stage}/bin/npm" --version)"
  if [[ "${got}" != "${npm_version}" ]]; then
    echo "image/build.sh: the npm package says ${got}, expected ${npm_version}" >&2
    exit 1
  fi

  # The rootfs, with the Debian mirror mmdebstrap defaults to (plus the suite's updates and security archives). The
  # path-excludes are those of Debian's slim images. No /dev in the tarball: the runtime mounts its own.
  log "mmdebstrap ${DEBIAN_SUITE} (minbase, ca-certificates, libatomic1)…"
  # shellcheck disable=SC2016 # "$1" in a hook is the chroot's path, expanded by mmdebstrap's shell, not this one
  mmdebstrap --quiet --variant=minbase --include=ca-certificates,libatomic1 --skip=output/dev \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/groff/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/share/linda/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="sync-in ${stage} /usr/local" \
    --customize-hook='chroot "$1" groupadd --gid 1000 node' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    --customize-hook='chroot "$1" env PATH=/usr/local/bin:/usr/bin:/bin sh -c "node --version && npm --version" >&2' \
    "${DEBIAN_SUITE}" "${work}/rootfs.tar"
  log "rootfs $(du -m "${work}/rootfs.tar" | cut -f1) MB"

  base_ctr="$(buildah from scratch)"
  buildah add --quiet "${base_ctr}" "${work}/rootfs.tar" / >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${node_version}" \
    --cmd node \
    --label "${LABEL_BASE}=${key}" \
    --created-by "image/build.sh: mmdebstrap ${DEBIAN_SUITE} minbase, node ${node_version}, npm ${npm_version}" \
    "${base_ctr}"
  buildah commit --quiet --rm "${base_ctr}" "${base_ref}" >/dev/null
  base_ctr=
  # Only this key's archive is kept: older bases of this recipe are of no further use.
  rm -f "${image_dir}"/node-base-*.oci.tar
  buildah push --quiet "${base_ref}" "oci-archive:${base_archive}.tmp:${base_ref}"
  mv -f "${base_archive}.tmp" "${base_archive}"
  log "base ${base_ref} built in $((SECONDS - t0))s, cached as ${base_archive}"
}

# inputs_digest: what the Dockerfile's build reads (its COPY sources less .dockerignore's entries) and the base.
inputs_digest() {
  (
    cd "${repo_root}"
    printf 'base %s\n' "$(label_of "${base_ref}" "${LABEL_BASE}")"
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json src bin \
      -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-16
}

ensure_image() {
  local digest
  digest="$(inputs_digest)"
  archive="${image_dir}/jobs-storage-${version}-local-${digest}.docker.tar"
  if [[ "$(label_of "${image_ref}" "${LABEL_INPUTS}")" == "${digest}" ]]; then
    log "${image_ref} (inputs ${digest}) is in buildah's storage"
  elif [[ -f "${archive}" ]]; then
    log "restoring ${image_ref} from ${archive}"
    restore "docker-archive:${archive}" "${image_ref}"
    return 0
  else
    local t0=${SECONDS}
    log "building ${image_ref} from the Dockerfile (inputs ${digest})…"
    # --isolation chroot: the RUN steps run chrooted in their own mount, PID, IPC and UTS namespaces, with no OCI
    # runtime and no cgroup: Debian's crun 1.8 refuses this machine's hybrid cgroups, and a build step needs no
    # limits. --network=host: `npm ci` reaches the npm registry through the host's network, and buildah sets up no
    # CNI bridge (no iptables rules, no network config written where a local kubelet's CNI looks). The storage
    # driver is the one buildah picks: native overlay on ext4 here (vfs would copy every layer in full).
    # --layers keeps each step's result, so a change under src/ reruns `npm run build` but not `npm ci`.
    # The host's trust store, for the RUN steps only (bind mounts, never part of a layer): a network that reaches the
    # npm registry through a TLS-intercepting proxy (this machine's does) has its CA there, and npm trusts only
    # node's built-in roots unless its cafile says otherwise. Debian's bundle already holds those roots.
    local trust=()
    local host_ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
    if [[ -f "${host_ca}" ]]; then
      printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"${work}/npmrc"
      trust=(--volume "${host_ca}:/etc/ssl/certs/ca-certificates.crt:ro" --volume "${work}/npmrc:/root/.npmrc:ro")
    fi
    buildah bud --pull=never --isolation chroot --network=host --layers --force-rm --quiet "${trust[@]}" \
      --label "${LABEL_INPUTS}=${digest}" \
      -f "${repo_root}/Dockerfile" -t "${image_ref}" "${repo_root}" >&2
    log "built ${image_ref} in $((SECONDS - t0))s"
  fi
  if [[ ! -f "${archive}" ]]; then
    rm -f "${image_dir}"/jobs-storage-*-local-*.docker.tar
    buildah push --quiet "${image_ref}" "docker-archive:${archive}.tmp:${image_ref}"
    mv -f "${archive}.tmp" "${archive}"
    log "exported ${archive}"
  fi
}

report_sizes() {
  log "${image_ref}: $(buildah images --format '{{.Size}}' "${image_ref}") uncompressed," \
    "archive $(($(stat -c %s "${archive}") / 1000000)) MB (${archive})"
}

main "$@"
