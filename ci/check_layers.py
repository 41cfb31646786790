#!/usr/bin/env python3
"""Checks that every #include points down the layers, and that only core/ includes <tss2/...>.

The layers, bottom to top:
  core -> device | cloud | provisioning | reports -> engine -> scenarios -> cli | bench
Production code includes its own folder and the layers below it; the four middle folders never
include each other, and cli and bench (the programs) may share each other's headers. Tests
(*_test.cc, *_fuzz.cc, testing/ folders) sit above what they test: they may also use the other
middle folders (a pkid test provisions its unit, a cloud test connects with the SSL-I client) and
the test support, engine/ (which starts swtpm and tpm2-abrmd) and fixtures/.

Usage: check_layers.py [SOURCE_DIR]; prints each wrong-way include as file:line and exits 1.
"""

import os
import re
import sys

LAYER = {
    "core": 0,
    "device": 1, "cloud": 1, "provisioning": 1, "reports": 1,
    "engine": 2,
    "scenarios": 3,
    "cli": 4, "bench": 4,
    "fixtures": 5,
}
SIBLINGS_SHARE = {"cli", "bench"}  # the programs may share headers; the middle layer may not
TEST_SUPPORT = {"engine", "fixtures"}
SOURCE_SUFFIXES = (".cc", ".h")
PROJECT_INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')
TSS2_INCLUDE = re.compile(r"^\s*#\s*include\s+<tss2/")


def is_test_code(path):
    name = os.path.basename(path)
    parts = path.split(os.sep)
    return name.endswith(("_test.cc", "_fuzz.cc")) or "testing" in parts[:-1]


def may_include(folder, target, test_code):
    if target == folder:
        return True
    if target not in LAYER:
        return False
    if test_code and (target in TEST_SUPPORT or LAYER[target] <= LAYER["engine"]):
        return True
    if LAYER[target] < LAYER[folder]:
        return True
    return LAYER[target] == LAYER[folder] and folder in SIBLINGS_SHARE and target in SIBLINGS_SHARE


def allowed_text(folder):
    below = sorted(f for f in LAYER if f != folder and may_include(folder, f, False))
    return ", ".join([folder] + below)


def check_file(root, path):
    rel = os.path.relpath(path, root)
    folder = rel.split(os.sep)[0]
    test_code = is_test_code(rel)
    problems = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if TSS2_INCLUDE.match(line) and folder != "core":
                problems.append(f"{rel}:{number}: includes <tss2/...>; only core/ talks to tpm2-tss "
                                "(add what you need to core/)")
                continue
            m = PROJECT_INCLUDE.match(line)
            if m and m.group(1) in LAYER and not may_include(folder, m.group(1), test_code):
                problems.append(f"{rel}:{number}: {folder}/ includes {m.group(1)}/, a layer it may not "
                                f"depend on; {folder}/ may include {allowed_text(folder)}"
                                + (" (and, in tests, every folder up to engine, and fixtures)" if test_code else ""))
    return problems


def sources(root):
    for folder in LAYER:
        top = os.path.join(root, folder)
        for dirpath, _, names in os.walk(top):
            for name in sorted(names):
                if name.endswith(SOURCE_SUFFIXES):
                    yield os.path.join(dirpath, name)


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = [p for path in sources(root) for p in check_file(root, path)]
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layers")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
