#!/usr/bin/env bash
# make fleettest (opt-in, not in CI): the fleet scenario of
# cmd/framerecv's TestFleetMinIO against MinIO erasure-coded over 4 drive
# folders (MINIO_CI_CD=1), with one drive made unusable mid-run and one of
# two framerecv instances SIGKILLed mid-stream.
#
# MinIO's server has no release on Debian and no semver tag on the Go module
# proxy; the proxy serves its commits as pseudo-versions, and go install
# builds one (its go.mod has no replace directives). The pinned commit below
# goes into the same version-keyed cache as scripts/tools.txt's tools
# (scripts/lib/tools.sh); the first build downloads a few hundred MiB of
# modules and takes several minutes on 2 cores. MinIO's server is AGPL-3.0:
# it is only run here as a separate test program, never linked or shipped.
# Set FRAMEPUSH_MINIO=/path/to/minio to use a binary you already have.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/tools.sh

pkg=github.com/minio/minio
ver=v0.0.0-20260212201848-7aac2a2c5b7c
dir=$FRAMEPUSH_TOOLS/minio@$ver
bin=${FRAMEPUSH_MINIO:-$dir/minio}

bash scripts/deps.sh >/dev/null # versitygw and friends, for the build of the tests

if [ -z "${FRAMEPUSH_MINIO:-}" ]; then
  built=$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $2 " " $3 }')
  if [ "$built" != "$pkg $ver" ]; then
    echo "fleettest: installing MinIO server $pkg@$ver into $dir (first time: several minutes)"
    rm -rf "$dir"; mkdir -p "$dir"
    if ! GOBIN=$dir go install "$pkg@$ver"; then
      echo "fleettest: FAILED: MinIO's server could not be installed from the Go module proxy ($pkg@$ver)." >&2
      echo "fleettest: Debian has no MinIO server package; set FRAMEPUSH_MINIO=/path/to/minio to use one you have." >&2
      exit 1
    fi
  fi
fi
[ -x "$bin" ] || { echo "fleettest: no MinIO binary at $bin" >&2; exit 1; }
echo "fleettest: MinIO $("$bin" --version 2>/dev/null | head -1) from $bin"
FRAMEPUSH_FLEETTEST=1 FRAMEPUSH_MINIO=$bin go test -race -count=1 -v -run '^TestFleetMinIO$' ./cmd/framerecv
