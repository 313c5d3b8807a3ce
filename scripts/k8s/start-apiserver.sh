#!/usr/bin/env bash
# Starts a throw-away Kubernetes API server (etcd + kube-apiserver v1.20.2) on free 127.0.0.1 ports
# for the controller's integration tests (test infrastructure), waits until it serves, and exits 0
# leaving both running.
#
#   scripts/k8s/start-apiserver.sh DIR             # prints DIR/kubeconfig on stdout
#   scripts/k8s/start-apiserver.sh --cluster DIR   # the full control plane (= start-cluster.sh DIR)
#   scripts/k8s/stop-apiserver.sh DIR              # stops them and removes the state
#
# Without --cluster nothing reconciles workloads (no controller-manager, no scheduler), so tests can
# write Deployment status themselves. --cluster also starts kube-controller-manager (every default
# controller: deployment, replicaset, job, garbage collector, namespace, node lifecycle, ...) and
# kube-scheduler, each with its own token and kubeconfig, and waits for both /healthz (and for the
# controller-manager's first visible work, the `default` ServiceAccount). Still no kubelet: Pods get
# bound to Nodes (spec.nodeName) but nothing runs them unless a node agent does.
#
# DIR (created if missing; no whitespace) receives:
#   kubeconfig   server https://127.0.0.1:PORT, the CA inline, a bearer token (group system:masters)
#   env          KEY=VALUE lines, sourceable: KUBECONFIG, OSPREY_K8S_SERVER, OSPREY_K8S_TOKEN,
#                OSPREY_K8S_CA_FILE, ETCD_PID, KUBE_APISERVER_PID, ETCD_DATA_DIR, ETCD_CLIENT_URL
#   pids         one PID a line (etcd, kube-apiserver, [controller-manager, scheduler,] the
#                owner watcher if any)
#   pki/         throw-away CA, serving cert (IP SAN 127.0.0.1), service-account key, token file
#   etcd.log, kube-apiserver.log
# and with --cluster: kube-controller-manager.kubeconfig, kube-scheduler.kubeconfig,
#   kube-controller-manager.log, kube-scheduler.log, and in env KUBE_CONTROLLER_MANAGER_PID,
#   KUBE_SCHEDULER_PID, KUBE_CONTROLLER_MANAGER_URL, KUBE_SCHEDULER_URL (their https:// bases,
#   self-signed serving certificates).
# etcd keeps its data in /dev/shm (DIR/etcd-data when /dev/shm is not writable).
#
# Binaries come from build-apiserver.sh (a no-op once cached; 8-15 min the first time on 2 cores)
# unless KUBE_APISERVER and ETCD (and with --cluster KUBE_CONTROLLER_MANAGER and KUBE_SCHEDULER)
# name them. Other knobs:
#   OSPREY_K8S_START_TIMEOUT   seconds to wait for readiness (default 120)
#   OSPREY_K8S_OWNER_PID       if set, a watcher stops both servers once that process exits, so a
#                              test run that dies without calling stop-apiserver.sh leaks nothing
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
log() { printf '[start-apiserver %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# alive PID: running and not a zombie (an orphan's parent may never reap it).
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

CLUSTER=0
if [[ "${1:-}" == --cluster ]]; then
  CLUSTER=1
  shift
fi
[[ $# -eq 1 ]] || { echo "usage: $0 [--cluster] DIR" >&2; exit 2; }
mkdir -p "$1"
DIR="$(cd "$1" && pwd)"
[[ "$DIR" =~ ^[A-Za-z0-9_./+@:-]+$ ]] || die "DIR must be a path without whitespace or quotes: $DIR"
TIMEOUT="${OSPREY_K8S_START_TIMEOUT:-120}"

if [[ -f "$DIR/pids" ]]; then
  while read -r pid; do
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
      die "$DIR already has a running server (pid $pid); run stop-apiserver.sh $DIR first"
    fi
  done <"$DIR/pids"
fi

command -v python3 >/dev/null || die "python3 is required"
if ! command -v openssl >/dev/null; then
  log "openssl not found; installing Debian's openssl package"
  [[ $(id -u) -eq 0 ]] || die "openssl is missing and installing it needs root (apt-get install openssl)"
  apt-get install -y -q openssl >&2 || { apt-get update -q >&2 && apt-get install -y -q openssl >&2; }
fi

need_build=0
[[ -n "${KUBE_APISERVER:-}" && -n "${ETCD:-}" ]] || need_build=1
if ((CLUSTER == 1)) && [[ -z "${KUBE_CONTROLLER_MANAGER:-}" || -z "${KUBE_SCHEDULER:-}" ]]; then
  need_build=1
fi
if ((need_build == 1)); then
  paths="$("$HERE/build-apiserver.sh")"
  KUBE_APISERVER="${KUBE_APISERVER:-$(sed -n 's/^KUBE_APISERVER=//p' <<<"$paths")}"
  ETCD="${ETCD:-$(sed -n 's/^ETCD=//p' <<<"$paths")}"
  KUBE_CONTROLLER_MANAGER="${KUBE_CONTROLLER_MANAGER:-$(sed -n 's/^KUBE_CONTROLLER_MANAGER=//p' <<<"$paths")}"
  KUBE_SCHEDULER="${KUBE_SCHEDULER:-$(sed -n 's/^KUBE_SCHEDULER=//p' <<<"$paths")}"
fi
[[ -x "$KUBE_APISERVER" ]] || die "kube-apiserver not executable: $KUBE_APISERVER"
[[ -x "$ETCD" ]] || die "etcd not executable: $ETCD"
if ((CLUSTER == 1)); then
  [[ -x "$KUBE_CONTROLLER_MANAGER" ]] || die "kube-controller-manager not executable: $KUBE_CONTROLLER_MANAGER"
  [[ -x "$KUBE_SCHEDULER" ]] || die "kube-scheduler not executable: $KUBE_SCHEDULER"
fi

T0=$(date +%s.%N)
rm -rf "$DIR/pki" "$DIR/kubeconfig" "$DIR/env" "$DIR/pids" "$DIR/etcd-data" \
  "$DIR/kube-controller-manager.kubeconfig" "$DIR/kube-scheduler.kubeconfig"
mkdir -p "$DIR/pki"
chmod 700 "$DIR/pki"
PKI="$DIR/pki"

# --- Free ports: bind five at once on port 0 so they are distinct, then release them ---
read -r ETCD_CLIENT_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

# --- Throw-away PKI: ECDSA P-256 CA and serving cert (IP SAN 127.0.0.1, which rustls needs) ---
cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = osprey-test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EOF
# More names for the serving certificate, e.g. the test node agent's gateway address through
# which pods reach this server (node-agent.py --api-access): OSPREY_K8S_EXTRA_SANS=IP:10.244.0.1
if [[ -n "${OSPREY_K8S_EXTRA_SANS:-}" ]]; then
  sed -i "s|^subjectAltName = .*|&, ${OSPREY_K8S_EXTRA_SANS}|" "$PKI/openssl.cnf"
fi
(
  cd "$PKI"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout ca.key -out ca.crt -days 30 -subj /CN=osprey-test-ca \
    -config openssl.cnf -extensions ca
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver -config openssl.cnf
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 30 -extfile openssl.cnf -extensions server -out apiserver.crt
  # Service-account token signing key pair.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
  openssl pkey -in sa.key -pubout -out sa.pub
) 2>"$DIR/openssl.log" || { cat "$DIR/openssl.log" >&2; die "certificate generation failed"; }
TOKEN="$(openssl rand -hex 32)"
# token,user,uid,"groups"
printf '%s,admin,admin-uid,"system:masters"\n' "$TOKEN" >"$PKI/tokens.csv"
if ((CLUSTER == 1)); then
  # The components' own users, which 1.20's default RBAC knows. The controller-manager also gets
  # system:masters: with --use-service-account-credentials=false every controller acts as this one
  # user, and the system:kube-controller-manager role alone does not let the deployment, replicaset
  # or job controllers write their objects. The scheduler's default roles are enough.
  KCM_TOKEN="$(openssl rand -hex 32)"
  SCHED_TOKEN="$(openssl rand -hex 32)"
  printf '%s,system:kube-controller-manager,kube-controller-manager-uid,"system:masters"\n' \
    "$KCM_TOKEN" >>"$PKI/tokens.csv"
  printf '%s,system:kube-scheduler,kube-scheduler-uid\n' "$SCHED_TOKEN" >>"$PKI/tokens.csv"
fi
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"

# From here on, any exit before the end (an error, a signal) stops what was started, keeping logs.
ready=0
cleanup() { ((ready == 1)) || "$HERE/stop-apiserver.sh" --keep-logs "$DIR" >&2 || true; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- etcd ---
if [[ -d /dev/shm && -w /dev/shm ]]; then
  ETCD_DATA="$(mktemp -d /dev/shm/osprey-etcd.XXXXXX)"
else
  ETCD_DATA="$DIR/etcd-data"
  mkdir -p "$ETCD_DATA"
fi
chmod 700 "$ETCD_DATA"
ETCD_CLIENT_URL="http://127.0.0.1:$ETCD_CLIENT_PORT"
ETCD_PEER_URL="http://127.0.0.1:$ETCD_PEER_PORT"
# setsid: own session, so the caller's terminal or process-group signals do not reach them.
setsid "$ETCD" \
  --name osprey-test \
  --data-dir "$ETCD_DATA" \
  --listen-client-urls "$ETCD_CLIENT_URL" \
  --advertise-client-urls "$ETCD_CLIENT_URL" \
  --listen-peer-urls "$ETCD_PEER_URL" \
  --initial-advertise-peer-urls "$ETCD_PEER_URL" \
  --initial-cluster "osprey-test=$ETCD_PEER_URL" \
  --initial-cluster-state new \
  --logger zap --log-outputs stderr --log-level warn \
  </dev/null >"$DIR/etcd.log" 2>&1 &
ETCD_PID=$!
echo "$ETCD_PID" >"$DIR/pids"
# Record enough for stop-apiserver.sh to clean up even if the rest of this script fails.
write_env() {
  cat >"$DIR/env" <<EOF
KUBECONFIG=$DIR/kubeconfig
OSPREY_K8S_SERVER=https://127.0.0.1:$API_PORT
OSPREY_K8S_TOKEN=$TOKEN
OSPREY_K8S_CA_FILE=$PKI/ca.crt
ETCD_PID=$ETCD_PID
KUBE_APISERVER_PID=${API_PID:-}
ETCD_DATA_DIR=$ETCD_DATA
ETCD_CLIENT_URL=$ETCD_CLIENT_URL
EOF
  if ((CLUSTER == 1)); then
    cat >>"$DIR/env" <<EOF
KUBE_CONTROLLER_MANAGER_PID=${KCM_PID:-}
KUBE_SCHEDULER_PID=${SCHED_PID:-}
KUBE_CONTROLLER_MANAGER_URL=https://127.0.0.1:$KCM_PORT
KUBE_SCHEDULER_URL=https://127.0.0.1:$SCHED_PORT
EOF
  fi
}
write_env

fail() {
  log "error: $*"
  for f in etcd.log kube-apiserver.log kube-controller-manager.log kube-scheduler.log; do
    [[ -s "$DIR/$f" ]] && { log "--- last lines of $DIR/$f ---"; tail -n 25 "$DIR/$f" >&2; }
  done
  exit 1 # the EXIT trap stops etcd and kube-apiserver
}

# http_status URL [TOKEN]: prints the HTTP status (000 when unreachable). Python keeps curl optional.
http_status() {
  python3 - "$@" <<'EOF'
import ssl, sys, urllib.request, urllib.error
url, token, ca = (sys.argv[1:] + ["", ""])[:3]
req = urllib.request.Request(url)
if token:
    req.add_header("Authorization", "Bearer " + token)
if ca == "insecure":  # the components' self-signed serving certificates
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
else:
    ctx = ssl.create_default_context(cafile=ca) if ca else None
try:
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

deadline=$((SECONDS + TIMEOUT))
until [[ "$(http_status "$ETCD_CLIENT_URL/health")" == 200 ]]; do
  alive "$ETCD_PID" || fail "etcd exited"
  ((SECONDS < deadline)) || fail "etcd not healthy after ${TIMEOUT}s"
  sleep 0.2
done

# --- kube-apiserver ---
setsid "$KUBE_APISERVER" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --insecure-port=0 \
  --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --token-auth-file="$PKI/tokens.csv" \
  --authorization-mode=RBAC \
  --etcd-servers="$ETCD_CLIENT_URL" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  --profiling=false \
  </dev/null >"$DIR/kube-apiserver.log" 2>&1 &
API_PID=$!
echo "$API_PID" >>"$DIR/pids"
write_env

SERVER="https://127.0.0.1:$API_PORT"
until [[ "$(http_status "$SERVER/readyz" "$TOKEN" "$PKI/ca.crt")" == 200 ]]; do
  alive "$API_PID" || fail "kube-apiserver exited"
  ((SECONDS < deadline)) || fail "kube-apiserver not ready after ${TIMEOUT}s"
  sleep 0.25
done
until [[ "$(http_status "$SERVER/api/v1/namespaces/default" "$TOKEN" "$PKI/ca.crt")" == 200 ]]; do
  alive "$API_PID" || fail "kube-apiserver exited"
  ((SECONDS < deadline)) || fail "namespace default not created after ${TIMEOUT}s"
  sleep 0.25
done

# write_kubeconfig FILE USER TOKEN
write_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: osprey-test
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $2
  user:
    token: $3
contexts:
- name: osprey-test
  context:
    cluster: osprey-test
    user: $2
    namespace: default
current-context: osprey-test
EOF
  chmod 600 "$1"
}

if ((CLUSTER == 1)); then
  KCM_KUBECONFIG="$DIR/kube-controller-manager.kubeconfig"
  SCHED_KUBECONFIG="$DIR/kube-scheduler.kubeconfig"
  write_kubeconfig "$KCM_KUBECONFIG" system:kube-controller-manager "$KCM_TOKEN"
  write_kubeconfig "$SCHED_KUBECONFIG" system:kube-scheduler "$SCHED_TOKEN"
  mkdir -p "$PKI/kube-controller-manager" "$PKI/kube-scheduler"

  # --- kube-controller-manager: every default controller, one identity, no leader election ---
  # Node IPAM stays off (--allocate-node-cidrs defaults to false): Pod IPs come from the node agent.
  # Node monitoring: a node whose heartbeat (Ready condition or Lease) is older than 20 s turns
  # Unknown and gets the unreachable taints; Pods tolerate those for 300 s (DefaultTolerationSeconds).
  setsid "$KUBE_CONTROLLER_MANAGER" \
    --kubeconfig="$KCM_KUBECONFIG" \
    --authentication-kubeconfig="$KCM_KUBECONFIG" \
    --authorization-kubeconfig="$KCM_KUBECONFIG" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --secure-port="$KCM_PORT" \
    --port=0 \
    --cert-dir="$PKI/kube-controller-manager" \
    --controllers='*' \
    --leader-elect=false \
    --use-service-account-credentials=false \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" \
    --node-monitor-period=2s \
    --node-monitor-grace-period=20s \
    --node-startup-grace-period=20s \
    --profiling=false \
    </dev/null >"$DIR/kube-controller-manager.log" 2>&1 &
  KCM_PID=$!
  echo "$KCM_PID" >>"$DIR/pids"

  # --- kube-scheduler: the default profile, no leader election ---
  setsid "$KUBE_SCHEDULER" \
    --kubeconfig="$SCHED_KUBECONFIG" \
    --authentication-kubeconfig="$SCHED_KUBECONFIG" \
    --authorization-kubeconfig="$SCHED_KUBECONFIG" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHED_PORT" \
    --port=0 \
    --cert-dir="$PKI/kube-scheduler" \
    --leader-elect=false \
    --profiling=false \
    </dev/null >"$DIR/kube-scheduler.log" 2>&1 &
  SCHED_PID=$!
  echo "$SCHED_PID" >>"$DIR/pids"
  write_env

  until [[ "$(http_status "https://127.0.0.1:$KCM_PORT/healthz" "" insecure)" == 200 ]]; do
    alive "$KCM_PID" || fail "kube-controller-manager exited"
    ((SECONDS < deadline)) || fail "kube-controller-manager not healthy after ${TIMEOUT}s"
    sleep 0.25
  done
  until [[ "$(http_status "https://127.0.0.1:$SCHED_PORT/healthz" "" insecure)" == 200 ]]; do
    alive "$SCHED_PID" || fail "kube-scheduler exited"
    ((SECONDS < deadline)) || fail "kube-scheduler not healthy after ${TIMEOUT}s"
    sleep 0.25
  done
  # The controller-manager's first visible work: the serviceaccount controller creates `default`.
  until [[ "$(http_status "$SERVER/api/v1/namespaces/default/serviceaccounts/default" "$TOKEN" "$PKI/ca.crt")" == 200 ]]; do
    alive "$KCM_PID" || fail "kube-controller-manager exited"
    ((SECONDS < deadline)) || fail "kube-controller-manager created no default ServiceAccount after ${TIMEOUT}s"
    sleep 0.25
  done
fi

write_kubeconfig "$DIR/kubeconfig" admin "$TOKEN"

if [[ -n "${OSPREY_K8S_OWNER_PID:-}" ]]; then
  kill -0 "$OSPREY_K8S_OWNER_PID" 2>/dev/null || fail "OSPREY_K8S_OWNER_PID $OSPREY_K8S_OWNER_PID is not running"
  # shellcheck disable=SC2016 # expanded by the watcher's bash, not here
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -f "$3/pids" ]]; do sleep 1; done
                  [[ -f "$3/pids" ]] && exec "$2/stop-apiserver.sh" "$3"' \
    osprey-k8s-watcher "$OSPREY_K8S_OWNER_PID" "$HERE" "$DIR" \
    </dev/null >>"$DIR/watcher.log" 2>&1 &
  echo "$!" >>"$DIR/pids"
fi

ready=1
what="etcd $ETCD_CLIENT_URL, pids $ETCD_PID $API_PID"
if ((CLUSTER == 1)); then
  what+=" $KCM_PID $SCHED_PID; controller-manager :$KCM_PORT, scheduler :$SCHED_PORT"
fi
log "ready in $(python3 -c "print(f'{$(date +%s.%N) - $T0:.1f}')") s: $SERVER ($what)"
echo "$DIR/kubeconfig"
