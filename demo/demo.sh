#!/usr/bin/env bash
# peapod's main scenario, end to end on this machine. Run it with `make demo`
# (which installs the Debian packages and builds bin/peapod first).
#
#  1. a private registry on loopback: Debian's docker-registry, TLS with a CA
#     generated here, htpasswd authentication;
#  2. an image built locally (busybox + httpd) pushed to it;
#  3. a peapod daemon configured to trust that CA (certs.d);
#  4. peapod login -> a Docker config.json (the future .dockerconfigjson Secret);
#  5. a pull without credentials fails with a clear error, a pull with them works;
#  6. the image is listed with the credential that pulled it.
# Everything started here is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PEAPOD=${PEAPOD:-$PWD/bin/peapod}
[ -x "$PEAPOD" ] || { echo "build first: make build" >&2; exit 1; }

WORK=$(mktemp -d /tmp/peapod-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. private registry with TLS and authentication on loopback"
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$WORK/password"
go build -o "$WORK/demo-registry" ./demo/registry
"$WORK/demo-registry" --dir "$WORK/registry" --user demo --password-file "$WORK/password" \
	--push awesomeapps/web:v1 --env-file "$WORK/registry.env" >"$WORK/registry.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -s "$WORK/registry.env" ] && break; sleep 0.1; done
[ -s "$WORK/registry.env" ] || { cat "$WORK/registry.out"; exit 1; }
# shellcheck disable=SC1091
. "$WORK/registry.env"
echo "registry $REGISTRY (user demo, password kept in a file, never printed); image $IMAGE"

step "2. peapod daemon trusting the registry's CA through certs.d"
mkdir -p "$WORK/certs.d/$REGISTRY"
cp "$CA_FILE" "$WORK/certs.d/$REGISTRY/ca.crt"
cat >"$WORK/peapod.toml" <<TOML
[image]
registries_config = "$WORK/registries.conf"
certs_dir = "$WORK/certs.d"
auth_files = ["ROOT/config.json"]
[network]
cni_conf_dir = "$WORK/cni"
bridge = "peapoddemo0"
subnet = "10.88.77.0/24"
TOML
"$PEAPOD" daemon --root "$WORK/root" --state "$WORK/state" --config "$WORK/peapod.toml" >"$WORK/daemon.log" 2>&1 &
pids+=($!)
export PEAPOD_HOST=unix://$WORK/state/api.sock
for _ in $(seq 1 100); do "$PEAPOD" version >/dev/null 2>&1 && break; sleep 0.1; done
run "$PEAPOD" version

step "3. a pull without credentials is refused, and says so"
if "$PEAPOD" pull --authfile "$WORK/none.json" "$IMAGE"; then
	echo "expected the anonymous pull to fail" >&2; exit 1
fi

step "4. peapod login writes a Docker config.json (mode 0600)"
printf '$ %s\n' "peapod login $REGISTRY -u demo --password-stdin --authfile $WORK/config.json < password-file"
"$PEAPOD" login "$REGISTRY" -u demo --password-stdin --authfile "$WORK/config.json" <"$WORK/password"
ls -l "$WORK/config.json"
echo "As a Kubernetes Secret (data elided): type kubernetes.io/dockerconfigjson, .dockerconfigjson: <$(base64 -w0 "$WORK/config.json" | wc -c) base64 bytes>"

step "5. pull through the daemon with the saved credential"
run "$PEAPOD" pull --authfile "$WORK/config.json" "$IMAGE"

step "6. the image, and the credential that pulled it"
run "$PEAPOD" images
printf '$ %s\n' "peapod inspect image $IMAGE | grep -A4 pulls"
"$PEAPOD" inspect image "$IMAGE" | grep -A5 '"pulls"'

if grep -qF "$(cat "$WORK/password")" "$WORK/daemon.log"; then
	echo "the password appeared in the daemon log" >&2; exit 1
fi
step "done: everything started by the demo is being stopped and removed"
