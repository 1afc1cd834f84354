#!/bin/sh
# Builds crictl v1.37.0 from the Go module proxy into OUT (default:
# _output/bin at the module root), once. The CRI integration tests run it
# from TestMain; `make` targets may too.
#   usage: test/cri/tools.sh [OUT]
set -eu
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/_output/bin}
mkdir -p "$out"
# crictl built by go install reports "version unknown"; the module version
# is in the binary's build info.
if [ -x "$out/crictl" ] && go version -m "$out/crictl" 2>/dev/null | grep -q "mod.*sigs.k8s.io/cri-tools.*$CRICTL_VERSION"; then
	exit 0
fi
# Outside the module, so that peapod's go.mod is neither read nor changed.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
GOBIN="$out" GOFLAGS=-mod=mod go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
go version -m "$out/crictl" | grep "mod.*cri-tools"
