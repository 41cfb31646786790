#!/usr/bin/env python3
"""Tests of check_layers.py on small source trees it must accept or refuse."""

import os
import subprocess
import sys
import tempfile
import unittest

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_layers.py")


def run_on(files):
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        done = subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True)
        return done.returncode, done.stdout


class CheckLayersTest(unittest.TestCase):
    def test_includes_down_the_layers_pass(self):
        code, out = run_on({
            "core/a.h": "#include <openssl/x509.h>\n#include <tss2/tss2_esys.h>\n",
            "device/pkid/b.cc": '#include "core/a.h"\n#include "device/ssli/c.h"\n',
            "engine/d.cc": '#include "device/pkid/b.h"\n#include "cloud/e.h"\n',
            "scenarios/f.cc": '#include "engine/d.h"\n',
            "cli/g.cc": '#include "scenarios/f.h"\n',
            "bench/h.cc": '#include "cli/g.h"\n',
        })
        self.assertEqual((code, out), (0, ""))

    def test_a_lower_layer_including_a_higher_one_fails_naming_both(self):
        code, out = run_on({"core/a.cc": '#include "core/b.h"\n#include "engine/scenario.h"\n'})
        self.assertEqual(code, 1)
        self.assertIn("core/a.cc:2: core/ includes engine/", out)

    def test_middle_folders_may_not_include_each_other(self):
        code, out = run_on({"cloud/a.cc": '#include "device/ssli/ssli_client.h"\n'})
        self.assertEqual(code, 1)
        self.assertIn("cloud/a.cc:1: cloud/ includes device/", out)

    def test_engine_may_not_include_scenarios(self):
        code, out = run_on({"engine/a.cc": '#include "scenarios/scenarios.h"\n'})
        self.assertEqual(code, 1)
        self.assertIn("engine/a.cc:1: engine/ includes scenarios/", out)

    def test_tests_may_use_the_test_support_and_sibling_folders(self):
        code, out = run_on({
            "cloud/a_test.cc": '#include "device/ssli/ssli_client.h"\n#include "fixtures/tpm_fixture.h"\n',
            "device/testing/peer.h": '#include "engine/process.h"\n',
        })
        self.assertEqual((code, out), (0, ""))

    def test_tests_below_the_programs_may_not_include_them(self):
        code, out = run_on({"device/a_test.cc": '#include "cli/exit_codes.h"\n'})
        self.assertEqual(code, 1)
        self.assertIn("device/a_test.cc:1: device/ includes cli/", out)

    def test_tss2_outside_core_fails_even_in_tests(self):
        code, out = run_on({"provisioning/a.h": "#include <tss2/tss2_tpm2_types.h>\n",
                            "fixtures/b.cc": "  #  include <tss2/tss2_esys.h>\n"})
        self.assertEqual(code, 1)
        self.assertIn("provisioning/a.h:1: includes <tss2/...>", out)
        self.assertIn("fixtures/b.cc:1: includes <tss2/...>", out)


if __name__ == "__main__":
    unittest.main()
