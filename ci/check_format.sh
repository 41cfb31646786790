#!/usr/bin/env bash
# Fails when a C++ file of the project does not match .clang-format (the house style), naming
# the files and the command that fixes them. Usage: ci/check_format.sh [SOURCE_DIR]
set -euo pipefail
root="${1:-$(dirname "$0")/..}"
cd "$root"
mapfile -t files < <(find core device cloud provisioning reports engine scenarios cli bench fixtures \
                          -type f \( -name '*.cc' -o -name '*.h' \) | sort)
# One clang-format for all files; each file that differs is named in its diagnostics.
mapfile -t bad < <(clang-format --dry-run "${files[@]}" 2>&1 | sed -n 's/^\([^: ]*\):[0-9]*:[0-9]*: .*clang-format.*/\1/p' | sort -u)
if [ ${#bad[@]} -ne 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files differ from .clang-format; fix with: clang-format -i FILE..."
  exit 1
fi
echo "check_format: ${#files[@]} files match .clang-format"
