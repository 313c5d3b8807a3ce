#!/usr/bin/env bash
# Provides a real Kubernetes control plane (kube-apiserver, kube-controller-manager and
# kube-scheduler v1.20.2), etcd and kubectl for the controller's integration tests (test
# infrastructure only), from Debian bookworm packages only:
#   - kube-apiserver, kube-controller-manager, kube-scheduler: built from Debian's `kubernetes`
#     SOURCE package with Debian's Go 1.19, in one `go build` (Debian ships only kubectl as a
#     binary package);
#   - etcd:    the `etcd-server` binary package, unpacked;
#   - kubectl: the `kubernetes-client` binary package (same source version), unpacked.
#
# Everything lands outside the repository, in
#   ${OSPREY_K8S_CACHE:-$HOME/.cache/osprey/k8s}/<key>/bin/{kube-apiserver,kube-controller-manager,
#   kube-scheduler,etcd,kubectl}
# where <key> names the pinned package versions. When that directory is complete (every binary
# present) this script is a no-op that needs no network; a cache from before the controller-manager
# and scheduler were added lacks them and is rebuilt in place, all three Go binaries together. It
# never changes the system's apt configuration: apt runs against a private sources list, lists
# directory and cache, and nothing is installed system-wide.
#
# Stdout gets only `NAME=path` lines (eval-able); progress goes to stderr:
#   KUBE_APISERVER=...  KUBE_CONTROLLER_MANAGER=...  KUBE_SCHEDULER=...  ETCD=...  KUBECTL=...
#   OSPREY_K8S_BIN=...
#
# Cold cost on 2 cores: see scripts/k8s/README.md. Environment knobs:
#   OSPREY_K8S_CACHE          cache root (default $HOME/.cache/osprey/k8s)
#   OSPREY_K8S_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian); if Debian ever
#                             drops a pinned version, http://snapshot.debian.org/archive/debian/<date>
#                             still has it
#   OSPREY_K8S_KEEP_WORK=1    keep the 2.2 GiB build tree and Go cache after a successful build
#   OSPREY_K8S_JOBS           parallel Go compile jobs (default: number of CPUs)
#   OSPREY_K8S_NICE           niceness of the go build (default 10; 0 for none)
set -euo pipefail

# Pinned Debian bookworm versions; the cache key is derived from them, so bumping one rebuilds.
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_GIT_VERSION=v1.20.2
K8S_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 # upstream v1.20.2 tag
GO_DEB_VERSION=1.19.8-2
REFLECT2_DEB_VERSION=1.0.2-2
ETCD_DEB_VERSION=3.4.23-4+b4
# Go build tags: `providerless` leaves out the in-tree cloud providers (AWS, Azure, GCE, OpenStack,
# vSphere SDKs), which a loopback test cluster never uses; it halves kube-apiserver and
# kube-controller-manager and saves about a third of the cold build.
GO_TAGS=selinux,notest,providerless
KEY="k8s-${K8S_DEB_VERSION}_etcd-${ETCD_DEB_VERSION}_go-${GO_DEB_VERSION}_providerless"
# Built from the kubernetes source, together; complete() requires all of them, so adding one here
# rebuilds an older cache (same key, fewer binaries) in place.
GO_CMDS=(kube-apiserver kube-controller-manager kube-scheduler)

CACHE_ROOT="${OSPREY_K8S_CACHE:-$HOME/.cache/osprey/k8s}"
DEST="$CACHE_ROOT/$KEY"
BIN="$DEST/bin"
WORK="$DEST/work"
MIRROR="${OSPREY_K8S_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[build-apiserver %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

print_paths() {
  echo "KUBE_APISERVER=$BIN/kube-apiserver"
  echo "KUBE_CONTROLLER_MANAGER=$BIN/kube-controller-manager"
  echo "KUBE_SCHEDULER=$BIN/kube-scheduler"
  echo "ETCD=$BIN/etcd"
  echo "KUBECTL=$BIN/kubectl"
  echo "OSPREY_K8S_BIN=$BIN"
}

complete() {
  local b
  [[ -f "$DEST/.complete" ]] || return 1
  for b in "${GO_CMDS[@]}" etcd kubectl; do
    [[ -x "$BIN/$b" ]] || return 1
  done
}

if complete; then
  print_paths
  exit 0
fi

mkdir -p "$DEST"
# One builder per key; a second caller waits and then finds the finished result.
exec 9>"$DEST/.lock"
if ! flock -n 9; then
  log "another build of $KEY is running; waiting for it"
  flock 9
fi
if complete; then
  print_paths
  exit 0
fi

for tool in apt-get dpkg-deb python3 flock; do
  command -v "$tool" >/dev/null || die "$tool is required (this script targets Debian bookworm)"
done
[[ "$(dpkg --print-architecture)" == amd64 ]] || log "warning: only tested on amd64"

START=$SECONDS
mkdir -p "$WORK" "$BIN"
log "building into $DEST"

# --- 1. Private apt: bookworm main binary + source indices, nothing touches /etc/apt or /var ---
APT="$WORK/apt"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT/sources.list"
  -o "Dir::Etc::SourceParts=$APT/sources.list.d"
  -o "Dir::Etc::Preferences=$APT/preferences"
  -o "Dir::Etc::PreferencesParts=$APT/preferences.d"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache"
  -o "APT::Sandbox::User=root" # downloads go to directories the _apt user cannot reach
  -o "Acquire::Retries=3"
  -o "Acquire::Check-Valid-Until=false" # lets OSPREY_K8S_DEBIAN_MIRROR point at snapshot.debian.org
  -q
)
if [[ ! -f "$APT/.updated" ]]; then
  mkdir -p "$APT/sources.list.d" "$APT/preferences.d" "$APT/lists/partial" "$APT/cache/archives/partial"
  : >"$APT/preferences"
  signed_by=""
  if [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    signed_by="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
  fi
  cat >"$APT/sources.list" <<EOF
deb ${signed_by}$MIRROR bookworm main
deb-src ${signed_by}$MIRROR bookworm main
EOF
  log "apt-get update (private lists under $APT)"
  apt-get "${APT_OPTS[@]}" update >&2
  touch "$APT/.updated"
fi

# --- 2. Downloads: the kubernetes source package and five binary packages ---
DL="$WORK/download"
mkdir -p "$DL"
if [[ ! -f "$DL/.done" ]]; then
  log "downloading kubernetes source package $K8S_DEB_VERSION"
  (cd "$DL" && apt-get "${APT_OPTS[@]}" source --download-only "kubernetes=$K8S_DEB_VERSION" >&2) ||
    die "could not fetch kubernetes=$K8S_DEB_VERSION; if Debian replaced it, bump the pins at the top of this script"
  log "downloading binary packages"
  (cd "$DL" && apt-get "${APT_OPTS[@]}" download \
    "golang-1.19-go=$GO_DEB_VERSION" \
    "golang-1.19-src=$GO_DEB_VERSION" \
    "golang-github-modern-go-reflect2-dev=$REFLECT2_DEB_VERSION" \
    "etcd-server=$ETCD_DEB_VERSION" \
    "kubernetes-client=$K8S_DEB_VERSION" >&2) ||
    die "could not fetch the pinned binary packages; if Debian replaced them, bump the pins"
  touch "$DL/.done"
fi

# --- 3. Unpack: Go toolchain, reflect2, etcd, kubectl ---
ROOT="$WORK/root" # dpkg-deb -x target shared by all the debs (the Go debs link into each other)
if [[ ! -f "$ROOT/.done" ]]; then
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  for deb in "$DL"/*.deb; do
    log "unpacking $(basename "$deb")"
    dpkg-deb -x "$deb" "$ROOT"
  done
  touch "$ROOT/.done"
fi
install -m 0755 "$ROOT/usr/bin/etcd" "$BIN/etcd"
install -m 0755 "$ROOT/usr/bin/kubectl" "$BIN/kubectl"

# --- 4. Unpack the source with Debian's patches applied ---
SRC="$WORK/kubernetes"
if [[ ! -f "$SRC/.unpacked" ]]; then
  rm -rf "$SRC"
  dsc=$(ls "$DL"/kubernetes_*.dsc)
  if command -v dpkg-source >/dev/null; then
    log "dpkg-source -x $(basename "$dsc")"
    dpkg-source --no-check -x "$dsc" "$SRC" >&2
  else
    # No dpkg-dev: do what dpkg-source does for a 3.0 (quilt) package.
    command -v patch >/dev/null || die "need dpkg-source (dpkg-dev) or patch to unpack the source"
    log "unpacking $(basename "$dsc") by hand (no dpkg-source)"
    # Python's tarfile reads both .gz and .xz, so xz-utils is not needed either.
    python3 - "$SRC" "$DL"/kubernetes_*.orig.tar.* "$DL"/kubernetes_*.debian.tar.* <<'EOF'
import os, sys, tarfile
dest, orig, debian = sys.argv[1:4]
os.makedirs(dest)
with tarfile.open(orig) as t:
    members = t.getmembers()
    top = os.path.commonpath([m.name for m in members])
    for m in members:
        m.name = os.path.relpath(m.name, top)
    t.extractall(dest, [m for m in members if m.name != "."])
with tarfile.open(debian) as t:
    t.extractall(dest)
EOF
    if [[ -f "$SRC/debian/patches/series" ]]; then
      grep -v -e '^#' -e '^[[:space:]]*$' "$SRC/debian/patches/series" | while read -r p _; do
        patch -d "$SRC" -p1 --quiet --forward <"$SRC/debian/patches/$p" >&2
      done
    fi
  fi
  touch "$SRC/.unpacked"
fi

# --- 5. Go environment: GOPATH mode, as Kubernetes 1.20's own build does ---
export GOROOT="$ROOT/usr/lib/go-1.19"
[[ -x "$GOROOT/bin/go" ]] || die "Go not found at $GOROOT"
export PATH="$GOROOT/bin:$PATH"
export GOPATH="$WORK/gopath"
export GOCACHE="$WORK/gocache"
export GO111MODULE=off
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
unset GOOS GOARCH GOBIN
mkdir -p "$GOPATH/src/k8s.io" "$GOPATH/bin"
ln -sfn "$SRC" "$GOPATH/src/k8s.io/kubernetes"
PKGDIR="$GOPATH/src/k8s.io/kubernetes"
JOBS="${OSPREY_K8S_JOBS:-$(nproc)}"

# --- 6. reflect2 v1.0.1 (vendored) crashes at run time with Go >= 1.18: use Debian's 1.0.2 ---
R2_SRC="$ROOT/usr/share/gocode/src/github.com/modern-go/reflect2"
R2_DST="$SRC/vendor/github.com/modern-go/reflect2"
if [[ ! -f "$R2_DST/.osprey-reflect2-1.0.2" ]]; then
  [[ -d "$R2_SRC" && -d "$R2_DST" ]] || die "reflect2 directories missing ($R2_SRC, $R2_DST)"
  log "replacing vendored reflect2 with Debian's $REFLECT2_DEB_VERSION"
  find "$R2_DST" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$R2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
    -exec cp {} "$R2_DST/" \;
  touch "$R2_DST/.osprey-reflect2-1.0.2"
fi

# --- 7. Generate pkg/generated/openapi/zz_generated.openapi.go (not in the tarball) ---
OPENAPI_OUT="$SRC/pkg/generated/openapi/zz_generated.openapi.go"
if [[ ! -f "$OPENAPI_OUT" ]]; then
  log "building openapi-gen"
  (cd "$PKGDIR" && go build -o "$GOPATH/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen) >&2
  # The same selection as build/root/Makefile.generated_files (KUBE_OPENAPI_TAG_FILES): every
  # directory of the tree (staging/src/* under its vendor/ name, not the rest of vendor/) with a
  # file tagged +k8s:openapi-gen=, minus code-generator and sample-apiserver.
  log "collecting packages tagged +k8s:openapi-gen="
  inputs=$(set +o pipefail; cd "$SRC" &&
    find -H . \( -path './_*' -o -path './.*' -o -path ./vendor -o -path ./debian \) -prune \
      -o -type f -name '*.go' -print0 |
    xargs -0 grep -l '^// *+k8s:' | xargs grep -l '+k8s:openapi-gen=' |
    sed -e 's|^\./||' -e 's|^staging/src/|vendor/|' -e 's|/[^/]*$||' |
    grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' |
    LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  [[ -n "$inputs" ]] || die "no +k8s:openapi-gen packages found"
  log "running openapi-gen over $(tr ',' '\n' <<<"$inputs" | wc -l) packages"
  (cd "$PKGDIR" && "$GOPATH/bin/openapi-gen" \
    --logtostderr --v 1 \
    --input-dirs "$inputs" \
    --output-base "$GOPATH/src" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi.tmp \
    --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --report-filename "$WORK/openapi-violations.report") >"$WORK/openapi-gen.log" 2>&1 ||
    { tail -n 30 "$WORK/openapi-gen.log" >&2; die "openapi-gen failed (log: $WORK/openapi-gen.log)"; }
  mv "$SRC/pkg/generated/openapi/zz_generated.openapi.tmp.go" "$OPENAPI_OUT"
fi

# --- 8. Build kube-apiserver, kube-controller-manager and kube-scheduler: one go build ---
VPKGS=(k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version)
# Reproducible build date: the Debian changelog's latest entry.
BUILD_DATE=$(date -u -d "$(sed -n 's/^ -- .*>  //p' "$SRC/debian/changelog" | head -n1)" +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS="-s -w"
for p in "${VPKGS[@]}"; do
  LDFLAGS+=" -X $p.gitVersion=$K8S_GIT_VERSION -X $p.gitCommit=$K8S_GIT_COMMIT"
  LDFLAGS+=" -X $p.gitTreeState=archive -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.buildDate=$BUILD_DATE"
done
# One invocation: the three commands share most packages (client-go, the apiserver and controller
# libraries), which Go compiles once; -o DIR/ writes one executable per command.
OUT="$WORK/out"
rm -rf "$OUT"
mkdir -p "$OUT"
log "go build ${GO_CMDS[*]} (-p $JOBS, nice ${OSPREY_K8S_NICE:-10}; 5-10 min cold on 2 cores)"
(cd "$PKGDIR" && nice -n "${OSPREY_K8S_NICE:-10}" go build -p "$JOBS" -trimpath -tags "$GO_TAGS" \
  -ldflags "$LDFLAGS" -o "$OUT/" "${GO_CMDS[@]/#/./cmd/}") >&2
for b in "${GO_CMDS[@]}"; do
  version=$("$OUT/$b" --version 2>&1 || true)
  [[ "$version" == "Kubernetes $K8S_GIT_VERSION" ]] || die "unexpected $b --version: $version"
done
for b in "${GO_CMDS[@]}"; do
  # Same filesystem: each binary appears whole, and a server already running keeps its inode.
  mv -f "$OUT/$b" "$BIN/$b"
done

"$BIN/etcd" --version >/dev/null 2>&1 || die "etcd does not run"

cat >"$DEST/VERSIONS" <<EOF
kube-apiserver, kube-controller-manager, kube-scheduler $K8S_GIT_VERSION (built from Debian source kubernetes $K8S_DEB_VERSION, golang-1.19 $GO_DEB_VERSION, reflect2 $REFLECT2_DEB_VERSION, tags $GO_TAGS)
kubectl        kubernetes-client $K8S_DEB_VERSION
etcd           etcd-server $ETCD_DEB_VERSION
built          $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - START)) s
EOF
touch "$DEST/.complete"
if [[ "${OSPREY_K8S_KEEP_WORK:-0}" != 1 ]]; then
  log "removing build tree $WORK (set OSPREY_K8S_KEEP_WORK=1 to keep it)"
  rm -rf "$WORK"
fi
log "done in $((SECONDS - START)) s"
print_paths
