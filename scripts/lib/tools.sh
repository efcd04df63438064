# Sourced by scripts/deps.sh and scripts/test.sh: the version-keyed Go tool
# cache. A tool is used only from $(tool_dir NAME), which deps.sh fills with
# go install of the pinned module version (tools.txt); nothing on PATH or in GOPATH/bin counts.
FRAMEPUSH_TOOLS=${FRAMEPUSH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/framepush/tools}
_tools_list="$(dirname "${BASH_SOURCE[0]}")/../tools.txt"

# tool_rows prints "name package version" for every pinned tool.
tool_rows() { grep -vE '^[[:space:]]*(#|$)' "$_tools_list"; }

# tool_field NAME COLUMN (2 = package, 3 = version).
tool_field() { tool_rows | awk -v n="$1" -v c="$2" '$1 == n { print $c }'; }

# tool_dir NAME: the cache folder of NAME at its pinned version.
tool_dir() { printf '%s/%s@%s\n' "$FRAMEPUSH_TOOLS" "$1" "$(tool_field "$1" 3)"; }

# tool_bin NAME: the binary to run.
tool_bin() { printf '%s/%s\n' "$(tool_dir "$1")" "$1"; }

# tool_check NAME: the cached binary exists and was built from the pinned
# module version (go version -m reads the build info go install embedded).
# A binary copied in by hand, or built from another version, fails.
tool_check() {
  local name=$1 pkg ver bin mod
  pkg=$(tool_field "$name" 2); ver=$(tool_field "$name" 3); bin=$(tool_bin "$name")
  [ -x "$bin" ] || { echo "tools: $name: $bin is missing (run scripts/deps.sh)" >&2; return 1; }
  mod=$(go version -m "$bin" 2>/dev/null | awk '$1 == "path" { p = $2 } $1 == "mod" { m = $2 " " $3 } END { print p " " m }')
  case "$mod" in
    "$pkg "*" $ver") return 0 ;;
  esac
  echo "tools: $name: $bin is not $pkg@$ver (build info: ${mod:-none}); remove it and run scripts/deps.sh" >&2
  return 1
}
