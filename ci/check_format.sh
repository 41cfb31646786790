#!/usr/bin/env bash
# Fails when a C++ file of the project does not match .clang-format (the house style), naming
# the files and the command that fixes them. Usage: ci/check_format.sh [SOURCE_DIR]
set -euo pipefail
root="${1:-$(dirname "$0")/..}"
cd "$root"
mapfile -t files < <(find core device cloud provisioning reports engine scenarios cli bench fixtures \
                          -type f \( -name '*.cc' -o -name '*.h' \) | sort)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -ne 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files differ from .clang-format; fix with: clang-format -i FILE..."
  exit 1
fi
echo "check_format: ${#files[@]} files match .clang-format"
