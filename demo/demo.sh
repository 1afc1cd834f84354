#!/usr/bin/env bash
# peapod's main scenario, end to end on this machine. Run it with `make demo`
# (which installs the Debian packages and builds bin/peapod first).
#
#  1. a private registry on loopback: Debian's docker-registry, TLS with a CA
#     generated here, htpasswd authentication, and a busybox image built
#     here pushed to it (httpd serving a baked-in /www/index.html on :8080);
#  2. a peapod daemon trusting that CA (certs.d) and holding no credential;
#  3. an anonymous pull is refused; peapod login writes a Docker config.json;
#     that file becomes a kubernetes.io/dockerconfigjson Secret "regcred" in
#     namespace awesomeapps;
#  4. a two-container Pod (web serves, client fetches) with imagePullSecrets
#     [regcred] and imagePullPolicy IfNotPresent: the image is not on the
#     node, so the pod's pull really uses the Secret;
#  5. the pod Running 2/2, its events, and the net/ipc/uts namespace inodes of
#     the infra process and both containers (different PIDs, same inodes);
#  6. the page the web container serves, fetched by the client over localhost.
# Everything started here is stopped and removed at the end, on failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
PEAPOD=${PEAPOD:-$PWD/bin/peapod}
[ -x "$PEAPOD" ] || { echo "build first: make build" >&2; exit 1; }

NS=awesomeapps
POD=web
BRIDGE=peapoddemo0
SUBNET=10.88.77.0/24
CGROUP=/peapod-demo
WORK=$(mktemp -d /tmp/peapod-demo.XXXXXX)
registry_pid="" daemon_pid=""
cleanup() {
	set +e
	if [ -n "$daemon_pid" ]; then
		# Pods outlive their daemon: delete them through it first.
		"$PEAPOD" delete namespace "$NS" --grace-period 1 >/dev/null 2>&1
		for _ in $(seq 1 150); do
			"$PEAPOD" get namespace "$NS" >/dev/null 2>&1 || break
			sleep 0.2
		done
		kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null
	fi
	# Whatever a failed run left (containers, conmon, mounts, netns, veths,
	# the bridge, NAT rules): named by this run's dirs, bridge and subnet.
	[ -x "$WORK/reap" ] && "$WORK/reap" --bridge "$BRIDGE" --subnet "$SUBNET" "$WORK/root" "$WORK/state"
	# The pod cgroups go with their pods; their parents are the demo's own.
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "$h${CGROUP#/}" ] && find "$h${CGROUP#/}" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "demo: $*" >&2; exit 1; }

go build -o "$WORK/demo-registry" ./demo/registry
go build -o "$WORK/reap" ./demo/reap

step "1. private registry with TLS and authentication on loopback, a locally built image pushed to it"
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/password"
"$WORK/demo-registry" --dir "$WORK/registry" --user demo --password-file "$WORK/password" \
	--push awesomeapps/web:v1 --env-file "$WORK/registry.env" >"$WORK/registry.out" 2>&1 &
registry_pid=$!
for _ in $(seq 1 300); do [ -s "$WORK/registry.env" ] && break; sleep 0.1; done
[ -s "$WORK/registry.env" ] || { cat "$WORK/registry.out"; fail "the registry did not start"; }
# shellcheck disable=SC1091
. "$WORK/registry.env"
echo "registry $REGISTRY (user demo, password kept in a file, never printed); image $IMAGE"

step "2. peapod daemon trusting the registry's CA through certs.d (no credentials of its own)"
mkdir -p "$WORK/certs.d/$REGISTRY"
cp "$CA_FILE" "$WORK/certs.d/$REGISTRY/ca.crt"
cat >"$WORK/peapod.toml" <<TOML
[image]
registries_config = "$WORK/registries.conf"
certs_dir = "$WORK/certs.d"
auth_files = ["ROOT/config.json"]
[network]
cni_conf_dir = "$WORK/cni"
bridge = "$BRIDGE"
subnet = "$SUBNET"
[kubelet]
cgroup_root = "$CGROUP"
TOML
"$PEAPOD" daemon --root "$WORK/root" --state "$WORK/state" --config "$WORK/peapod.toml" >"$WORK/daemon.log" 2>&1 &
daemon_pid=$!
export PEAPOD_HOST=unix://$WORK/state/api.sock
for _ in $(seq 1 100); do "$PEAPOD" version >/dev/null 2>&1 && break; sleep 0.1; done
run "$PEAPOD" version

step "3. an anonymous pull is refused, and says so"
if "$PEAPOD" pull --authfile "$WORK/none.json" "$IMAGE"; then
	fail "expected the anonymous pull to fail"
fi

step "4. peapod login writes a Docker config.json (mode 0600)"
printf '$ %s\n' "peapod login $REGISTRY -u demo --password-stdin --authfile $WORK/config.json < password-file"
"$PEAPOD" login "$REGISTRY" -u demo --password-stdin --authfile "$WORK/config.json" <"$WORK/password"
ls -l "$WORK/config.json"

step "5. namespace $NS and the login file as a kubernetes.io/dockerconfigjson Secret"
run "$PEAPOD" create namespace "$NS"
run "$PEAPOD" create secret generic regcred --type=kubernetes.io/dockerconfigjson \
	--from-file=.dockerconfigjson="$WORK/config.json" -n "$NS"
run "$PEAPOD" get secrets -n "$NS"

step "6. a two-container pod pulling with the Secret (the image is not on the node yet)"
run "$PEAPOD" images
cat >"$WORK/pod.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $POD
  namespace: $NS
spec:
  imagePullSecrets: [{name: regcred}]
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 8080}]
  - name: client
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
YAML
cat "$WORK/pod.yaml"
printf '$ %s\n' "peapod apply -f pod.yaml"
"$PEAPOD" apply -f "$WORK/pod.yaml"
printf 'waiting for the pod to be Running 2/2'
running=""
for _ in $(seq 1 120); do
	if "$PEAPOD" get pods -n "$NS" 2>/dev/null | grep -Eq "^$POD +2/2 +Running"; then running=1; break; fi
	printf '.'; sleep 1
done
echo
run "$PEAPOD" get pods -n "$NS"
run "$PEAPOD" get pods -n "$NS" -o wide
run "$PEAPOD" get events -n "$NS"
[ -n "$running" ] || { tail -n 30 "$WORK/daemon.log"; fail "the pod did not reach Running 2/2"; }

step "7. one network, IPC and UTS namespace for the whole pod"
run "$PEAPOD" inspect pod "$POD" -n "$NS" | tee "$WORK/inspect.json"
# name PID lines: the infra process, then each container (the JSON is indented).
{
	sed -n 's/^  "infraPID": \([0-9]*\),*$/infra(pause) \1/p' "$WORK/inspect.json"
	awk -F'"' '/^      "name":/ {n=$4} /^      "pid":/ {gsub(/[^0-9]/, "", $3); print n, $3}' "$WORK/inspect.json"
} >"$WORK/pids"
[ "$(wc -l <"$WORK/pids")" = 3 ] || fail "expected the infra process and 2 containers in peapod inspect pod"
printf '%-14s %8s %12s %12s %12s\n' PROCESS PID NET IPC UTS
while read -r name pid; do
	[ "$pid" -gt 0 ] || fail "$name has no process"
	ino() { stat -L -c %i "/proc/$pid/ns/$1"; }
	printf '%-14s %8s %12s %12s %12s\n' "$name" "$pid" "$(ino net)" "$(ino ipc)" "$(ino uts)"
	echo "$(ino net) $(ino ipc) $(ino uts)" >>"$WORK/inodes"
done <"$WORK/pids"
[ "$(cut -d' ' -f2 "$WORK/pids" | sort -u | wc -l)" = 3 ] || fail "expected 3 different PIDs"
[ "$(sort -u "$WORK/inodes" | wc -l)" = 1 ] || fail "the pod's processes do not share their namespaces"
echo "3 different PIDs, one net/ipc/uts namespace: namespaces shared"
printf 'the host, for comparison: %s %s %s\n' "$(stat -L -c %i /proc/self/ns/net)" "$(stat -L -c %i /proc/self/ns/ipc)" "$(stat -L -c %i /proc/self/ns/uts)"

step "8. the client container fetches the page the web container serves, over localhost"
run "$PEAPOD" exec -n "$NS" "$POD" -c client -- wget -qO- http://localhost:8080/

if grep -qF "$(cat "$WORK/password")" "$WORK/daemon.log"; then
	fail "the password appeared in the daemon log"
fi
step "done: everything started by the demo is being stopped and removed"
