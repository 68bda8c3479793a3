"""The layout's rules (STYLE.md habit 1, docs/ARCHITECTURE.md), checked on
the source tree: a file is a module and its name is the prefix of every
function in it, static ones too; no function is named for another file's
module; no C file grows past 900 lines; ctl/ and lib/ never include
daemon/mprocd.h (the build's include paths refuse it too); every C file is
as .clang-format (STYLE.md habit 15) formats it.

Function definitions are found the KNF way: a name at the start of a line,
followed by "(", the return type on the line before."""

import os
import re
import shutil
import subprocess
import sys
import unittest

SRCDIR = os.environ.get("MPROCD_SRCDIR",
                        os.path.join(os.path.dirname(__file__), ".."))

# A program's rooms: its own directory and lib/.
PROGRAMS = {"daemon": ("daemon", "lib"), "ctl": ("ctl", "lib")}
MAX_LINES = 900
# The allocation wrappers keep tmux's names (STYLE.md habit 3): xmalloc,
# xcalloc, xstrdup... share the prefix "x".
PREFIX_EXCEPTIONS = {"lib/xmalloc.c": "x"}
DEFINITION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(")
INCLUDES_MPROCD_H = re.compile(r'\s*#\s*include\s+"(\.\./)*(daemon/)?mprocd\.h"')


def c_files(directory):
    path = os.path.join(SRCDIR, directory)
    return sorted(os.path.join(directory, f) for f in os.listdir(path)
                  if f.endswith(".c"))


def prefix(rel):
    if rel in PREFIX_EXCEPTIONS:
        return PREFIX_EXCEPTIONS[rel]
    return os.path.basename(rel)[:-2].replace("-", "_")


def functions(rel):
    with open(os.path.join(SRCDIR, rel)) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        m = DEFINITION.match(line)
        # A definition's return type stands alone on the line before.
        if m and i > 0 and lines[i - 1] and not lines[i - 1].endswith(";") \
                and not lines[i - 1].startswith(("#", " ", "\t", "/", "*")):
            yield i + 1, m.group(1)


def named_for(name, p):
    return name == p or name.startswith(p + "_")


class TestLayout(unittest.TestCase):

    def test_function_prefixes(self):
        bad = []
        for directory in ("daemon", "lib", "ctl"):
            for rel in c_files(directory):
                p = prefix(rel)
                for line, name in functions(rel):
                    if name == "main" or named_for(name, p) or \
                            name.startswith(p) and p == "x":
                        continue
                    bad.append("%s:%d: %s does not start with %s_" %
                               (rel, line, name, p))
        self.assertEqual(bad, [], "\n" + "\n".join(bad))

    def test_no_function_named_for_another_module(self):
        bad = []
        for rooms in PROGRAMS.values():
            files = [rel for room in rooms for rel in c_files(room)]
            for rel in files:
                own = prefix(rel)
                for line, name in functions(rel):
                    for other in files:
                        p = prefix(other)
                        if other != rel and len(p) > len(own) and \
                                named_for(name, p):
                            bad.append("%s:%d: %s is named for %s" %
                                       (rel, line, name, other))
        self.assertEqual(bad, [], "\n" + "\n".join(bad))

    def test_files_are_small(self):
        big = []
        for directory in ("daemon", "lib", "ctl"):
            for rel in c_files(directory):
                with open(os.path.join(SRCDIR, rel)) as f:
                    n = sum(1 for _ in f)
                if n > MAX_LINES:
                    big.append("%s: %d lines" % (rel, n))
        self.assertEqual(big, [], "more than %d lines: %s" % (MAX_LINES, big))

    def test_lib_and_ctl_stay_out_of_the_daemon(self):
        bad = []
        for directory in ("lib", "ctl"):
            path = os.path.join(SRCDIR, directory)
            for f in sorted(os.listdir(path)):
                if not f.endswith((".c", ".h")):
                    continue
                with open(os.path.join(path, f)) as src:
                    for n, line in enumerate(src, 1):
                        if INCLUDES_MPROCD_H.match(line):
                            bad.append("%s/%s:%d" % (directory, f, n))
        self.assertEqual(bad, [])

    def test_formatted(self):
        if shutil.which("clang-format") is None:
            self.skipTest("SKIPPED: clang-format is not installed "
                          "(scripts/deps installs it)")
        files = [os.path.join(d, f)
                 for d in ("daemon", "lib", "ctl", "tests/unit",
                           "tests/helpers", "fuzz", "bench")
                 for f in sorted(os.listdir(os.path.join(SRCDIR, d)))
                 if f.endswith((".c", ".h"))]
        r = subprocess.run(["clang-format", "--dry-run", "--Werror"] + files,
                           cwd=SRCDIR, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0,
                         "not formatted; run clang-format -i on them:\n" +
                         r.stderr[:3000])

    def test_the_checker_sees_functions(self):
        # A checker that finds nothing passes everything: make sure it
        # finds what is known to be there.
        names = [name for _, name in functions("daemon/pool.c")]
        self.assertIn("pool_new", names)
        self.assertIn("pool_trim", names)
        self.assertNotIn("pool_worker_new", names)
        self.assertGreater(len(names), 20)


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=sys.argv[:1])
