#!/usr/bin/env bash
# The whole framepush test suite, exactly what CI runs (.ci/run):
#   1. installs what the tests need (scripts/deps.sh),
#   2. static checks: gofmt, go vet, staticcheck,
#   3. unit, interop and fault tests with the race detector,
#   4. cross-builds for every board target and checks the packages,
#   5. the emulated-board proof: an arm64 qemu VM with real kernel camera and
#      GPIO drivers running the cross-compiled agent (scripts/vmtest.sh).
# Set FRAMEPUSH_SKIP_VM=1 to skip step 5 on a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash scripts/deps.sh

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "go test -race"
go test -race -timeout 25m ./...

step "cross builds and packages"
make --no-print-directory cross sizes
make --no-print-directory deb-check

if [ "${FRAMEPUSH_SKIP_VM:-0}" = 1 ]; then
  step "emulated board: skipped (FRAMEPUSH_SKIP_VM=1)"
else
  step "emulated board (qemu arm64)"
  bash scripts/vmtest.sh
fi
step "all tests passed"
