#!/usr/bin/env python3
"""The Debian package (issue 8).

Builds the package with `cpack -G DEB` from the build tree that holds $SQLBAKD
(two levels up: BUILD/daemon/sqlbakd), into a temporary directory, and checks
it the way dpkg and a user see it:

- `dpkg-deb -c` lists every file of the layout, and nothing from the build;
- `dpkg-deb -I`: name, version, architecture, section, maintainer, a Depends
  from dpkg-shlibdeps (libsqlite3 ...) plus systemd; the conffile list; the
  maintainer scripts;
- extracted (`dpkg-deb -x`): `systemd-analyze verify --root=` passes on the
  installed unit (the root is completed with the host's units and /bin/kill,
  which systemd 252 wants to see), `systemd-analyze security --offline=true`
  rates it 2.5 or lower; the sysusers.d and tmpfiles.d files create the user
  and directories in that root; `man -l --warnings=w` renders each page with
  nothing on stderr, and the pages name every command, option and key the
  programs have; the shipped config passes `sqlbakd --check-config`; the bash
  completion passes `bash -n` and completes.

Then, only as root on a machine with apt-get (skipped with the reason
otherwise): `apt-get install ./sqlbak_*.deb`, the user, group and directories,
`sqlbakd --check-config`, nothing enabled, a first backup as the sqlbak user,
a reinstall that keeps an edited conffile, `remove`, and `dpkg --purge`. The
machine is put back (purge, and the user, group and directories the test
created removed) whatever happens, also on SIGTERM or SIGINT; a run killed
outright (CTest's timeout) leaves /var/tmp/sqlbak-test-package.json, and the
next run finishes its cleanup first.
"""

import glob
import gzip
import os
import pwd
import grp
import json
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
SQLBAKD = os.environ.get("SQLBAKD", "")
SQLBAKCTL = os.environ.get("SQLBAKCTL", "")
TIMEOUT = 900

# Every file the package must hold, beyond docs/*.md (which follow the source tree).
EXPECTED_FILES = [
    "/usr/sbin/sqlbakd",
    "/usr/bin/sqlbakctl",
    "/usr/lib/systemd/system/sqlbakd.service",
    "/usr/lib/sysusers.d/sqlbak.conf",
    "/usr/lib/tmpfiles.d/sqlbak.conf",
    "/etc/sqlbak/sqlbak.yaml",
    "/usr/share/man/man1/sqlbakctl.1.gz",
    "/usr/share/man/man5/sqlbak.yaml.5.gz",
    "/usr/share/man/man8/sqlbakd.8.gz",
    "/usr/share/bash-completion/completions/sqlbakctl",
    "/usr/share/doc/sqlbak/README.md",
    "/usr/share/doc/sqlbak/copyright",
    "/usr/share/doc/sqlbak/journald.md",
]
MAN_PAGES = {
    "sqlbakctl.1": "/usr/share/man/man1/sqlbakctl.1.gz",
    "sqlbak.yaml.5": "/usr/share/man/man5/sqlbak.yaml.5.gz",
    "sqlbakd.8": "/usr/share/man/man8/sqlbakd.8.gz",
}
COMPLETION = "/usr/share/bash-completion/completions/sqlbakctl"


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run(cmd, **kw)


def expected_files():
    files = list(EXPECTED_FILES)
    for doc in sorted(glob.glob(os.path.join(SOURCE_ROOT, "docs", "*.md"))):
        files.append("/usr/share/doc/sqlbak/docs/" + os.path.basename(doc))
    if os.path.exists(os.path.join(SOURCE_ROOT, "packaging", "grafana-dashboard.json")):
        files.append("/usr/share/doc/sqlbak/grafana-dashboard.json")
    return files


def build_dir():
    # $SQLBAKD is BUILD/daemon/sqlbakd.
    return os.path.dirname(os.path.dirname(os.path.abspath(SQLBAKD)))


class Package:
    """The package built once for every test: its path, and its extraction."""

    deb = None
    root = None  # dpkg-deb -x
    control = None  # dpkg-deb -e
    error = None  # why it could not be built
    workdir = None


def setUpModule():
    for tool in ("cpack", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise unittest.SkipTest("%s is not installed" % tool)
    if not SQLBAKD or not os.path.exists(SQLBAKD):
        raise AssertionError("set SQLBAKD to the built sqlbakd (BUILD/daemon/sqlbakd)")
    config = os.path.join(build_dir(), "CPackConfig.cmake")
    if not os.path.exists(config):
        raise AssertionError("%s does not exist: is packaging/install.cmake included by CMakeLists.txt?" % config)
    Package.workdir = tempfile.mkdtemp(prefix="sqlbak-package-")
    out = os.path.join(Package.workdir, "out")
    # -B keeps cpack's staging tree and the .deb out of the build tree.
    # CPACK_CMAKE_GENERATOR=Ninja: cpack then installs what is built without
    # first running the Makefile generator's `preinstall` target (which builds
    # `all`), so the package holds exactly the binaries under test and the test
    # never rebuilds the tree under a running CTest. The documented command
    # builds first itself (cmake --build build && cpack -G DEB). No ninja
    # binary is needed: cpack only asks the generator whether it has a
    # preinstall step.
    r = run(["cpack", "-G", "DEB", "--config", config, "-B", out, "-D", "CPACK_CMAKE_GENERATOR=Ninja"],
            cwd=build_dir())
    debs = glob.glob(os.path.join(out, "sqlbak_*.deb"))
    if r.returncode != 0 or len(debs) != 1:
        Package.error = "cpack -G DEB failed (exit %d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
        return
    Package.deb = debs[0]
    Package.root = os.path.join(Package.workdir, "root")
    Package.control = os.path.join(Package.workdir, "control")
    for args in (["-x", Package.deb, Package.root], ["-e", Package.deb, Package.control]):
        r = run(["dpkg-deb"] + args)
        if r.returncode != 0:
            Package.error = "dpkg-deb %s failed: %s" % (args[0], r.stderr)
            return


def tearDownModule():
    if Package.workdir:
        shutil.rmtree(Package.workdir, ignore_errors=True)


class PackageTestCase(unittest.TestCase):
    def setUp(self):
        if Package.error:
            self.fail(Package.error)

    def path(self, installed):
        return Package.root + installed


class PackageContentsTest(PackageTestCase):
    def listing(self):
        r = run(["dpkg-deb", "-c", Package.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = {}
        for line in r.stdout.splitlines():
            # -rwxr-xr-x root/root   123 2026-11-25 20:12 ./usr/sbin/sqlbakd
            fields = line.split(None, 5)
            name = fields[5].split(" -> ")[0]
            entries[name[1:].rstrip("/") or "/"] = (fields[0], fields[1])
        return entries

    def test_every_file_is_in_the_package(self):
        entries = self.listing()
        for f in expected_files():
            self.assertIn(f, entries, "dpkg-deb -c lacks %s (a file added to docs/ after the last build"
                                      " is packaged once the tree is built again)" % f)
        for f in ("/usr/sbin/sqlbakd", "/usr/bin/sqlbakctl"):
            self.assertEqual(entries[f][0], "-rwxr-xr-x", f)
        self.assertEqual(entries["/etc/sqlbak/sqlbak.yaml"][0], "-rw-r-----", "the config may name secrets")
        for f in expected_files():
            if f not in ("/usr/sbin/sqlbakd", "/usr/bin/sqlbakctl", "/etc/sqlbak/sqlbak.yaml"):
                self.assertEqual(entries[f][0], "-rw-r--r--", f)
        for name, (mode, owner) in entries.items():
            self.assertEqual(owner, "root/root", name)

    def test_nothing_else_is_in_the_package(self):
        expected = set(expected_files())
        for name, (mode, _) in self.listing().items():
            if mode.startswith("d"):
                continue
            self.assertIn(name, expected, "unexpected file in the package")

    def test_binaries_are_stripped_and_run(self):
        for f in ("/usr/sbin/sqlbakd", "/usr/bin/sqlbakctl"):
            r = run(["file", "-b", self.path(f)]) if shutil.which("file") else None
            if r is not None:
                self.assertIn("ELF", r.stdout)
                self.assertIn("stripped", r.stdout)
                self.assertNotIn("not stripped", r.stdout)
        r = run([self.path("/usr/sbin/sqlbakd"), "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^sqlbakd \d+\.\d+\.\d+")
        r = run([self.path("/usr/bin/sqlbakctl"), "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_shipped_files_match_the_source_tree(self):
        pairs = [("systemd/sqlbakd.service", "/usr/lib/systemd/system/sqlbakd.service"),
                 ("systemd/sqlbak.sysusers", "/usr/lib/sysusers.d/sqlbak.conf"),
                 ("systemd/sqlbak.tmpfiles", "/usr/lib/tmpfiles.d/sqlbak.conf"),
                 ("etc/sqlbak.yaml", "/etc/sqlbak/sqlbak.yaml"),
                 ("packaging/bash-completion/sqlbakctl", COMPLETION)]
        for source, installed in pairs:
            with open(os.path.join(SOURCE_ROOT, source), "rb") as a, open(self.path(installed), "rb") as b:
                self.assertEqual(a.read(), b.read(), "%s differs from %s" % (installed, source))
        for page, installed in MAN_PAGES.items():
            with open(os.path.join(SOURCE_ROOT, "packaging", "man", page), "rb") as a, \
                    gzip.open(self.path(installed), "rb") as b:
                self.assertEqual(a.read(), b.read(), installed)

    def test_copyright(self):
        with open(self.path("/usr/share/doc/sqlbak/copyright")) as f:
            text = f.read()
        self.assertTrue(text.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"))
        self.assertIn("Upstream-Name: sqlbak", text)


class PackageControlTest(PackageTestCase):
    def field(self, name):
        r = run(["dpkg-deb", "-f", Package.deb, name])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_control_fields(self):
        version = run([SQLBAKD, "--version"]).stdout.split()[-1]
        self.assertEqual(self.field("Package"), "sqlbak")
        self.assertEqual(self.field("Version"), version)
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(self.field("Architecture"), arch)
        self.assertEqual(self.field("Section"), "admin")
        self.assertEqual(self.field("Priority"), "optional")
        self.assertEqual(self.field("Maintainer"), "sqlbak developers")
        description = self.field("Description")
        self.assertGreater(len(description.splitlines()), 5, description)
        self.assertNotIn("built using CMake", description)
        self.assertEqual(os.path.basename(Package.deb), "sqlbak_%s_%s.deb" % (version, arch))

    def test_depends_come_from_shlibdeps(self):
        r = run(["dpkg-deb", "-I", Package.deb])
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"^ Depends: (.*)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        depends = [d.strip() for d in m.group(1).split(",")]
        names = {re.split(r"[ (|]", d)[0] for d in depends}
        for lib in ("libc6", "libsqlite3-0", "libzstd1", "libssl3", "libsystemd0", "libstdc++6"):
            self.assertIn(lib, names, m.group(1))
        self.assertTrue(any(n.startswith("libyaml-cpp") for n in names), m.group(1))
        self.assertTrue(any(n.startswith("libcurl") for n in names), m.group(1))
        self.assertIn("systemd", names, m.group(1))
        # dpkg-shlibdeps gives versions: (>= ...)
        self.assertRegex(m.group(1), r"libsqlite3-0 \(>= [0-9.]+\)")

    def test_conffiles(self):
        with open(os.path.join(Package.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/sqlbak/sqlbak.yaml"])

    def test_maintainer_scripts(self):
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(Package.control, script)
            self.assertTrue(os.path.exists(path), script)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755, script)
            r = run(["sh", "-n", path])
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(Package.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("systemd-sysusers sqlbak.conf", postinst)
        self.assertIn("systemd-tmpfiles --create sqlbak.conf", postinst)
        self.assertIn("daemon-reload", postinst)
        # Nothing enabled or started by surprise (try-restart only restarts a running one).
        code = "\n".join(l for l in postinst.splitlines() if not l.lstrip().startswith("#"))
        self.assertNotRegex(code, r"systemctl[^\n]*\b(enable|start|restart)\b(?<!try-restart)")
        self.assertNotIn("deb-systemd-invoke start", code)
        with open(os.path.join(Package.control, "postrm")) as f:
            postrm = f.read()
        self.assertIn("/etc/sqlbak", postrm)
        self.assertNotRegex("\n".join(l for l in postrm.splitlines() if not l.lstrip().startswith("#")),
                            r"rm [^\n]*/var/backups")


@unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
class PackageUnitTest(PackageTestCase):
    def unit_root(self):
        """The extracted package, completed with what `systemd-analyze verify
        --root=` needs to load a unit on systemd 252: the host's units
        (sysinit.target, multi-user.target, ...) and /bin/kill (ExecReload=)."""
        root = tempfile.mkdtemp(prefix="sqlbak-unit-root-")
        self.addCleanup(shutil.rmtree, root, True)
        shutil.copytree(Package.root, root, symlinks=True, dirs_exist_ok=True)
        units = os.path.join(root, "usr/lib/systemd/system")
        for host_unit in glob.glob("/usr/lib/systemd/system/*"):
            target = os.path.join(units, os.path.basename(host_unit))
            if not os.path.lexists(target) and not os.path.isdir(host_unit):
                shutil.copy2(host_unit, target, follow_symlinks=False)
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy2(os.path.realpath(shutil.which("kill") or "/bin/kill"), os.path.join(root, "bin/kill"))
        return root

    def test_verify_passes_on_the_installed_unit(self):
        root = self.unit_root()
        r = run(["systemd-analyze", "verify", "--root=" + root, "sqlbakd.service"], cwd=root)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("sqlbakd.service:", r.stderr, r.stderr)

    def test_verify_sees_the_packaged_binary(self):
        # The check above is only worth something if a missing ExecStart= fails it.
        root = self.unit_root()
        os.unlink(os.path.join(root, "usr/sbin/sqlbakd"))
        r = run(["systemd-analyze", "verify", "--root=" + root, "sqlbakd.service"], cwd=root)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/usr/sbin/sqlbakd", r.stderr)

    def test_security_exposure_is_ok(self):
        unit = self.path("/usr/lib/systemd/system/sqlbakd.service")
        r = run(["systemd-analyze", "security", "--offline=true", unit])
        m = re.search(r"Overall exposure level for sqlbakd.service: ([0-9.]+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.5, r.stdout)

    def test_unit_allows_the_network_that_s3_and_alerts_need(self):
        with open(self.path("/usr/lib/systemd/system/sqlbakd.service")) as f:
            lines = [l.strip() for l in f if not l.lstrip().startswith("#")]
        self.assertFalse([l for l in lines if l.startswith(("IPAddressDeny=", "PrivateNetwork="))], lines)
        self.assertIn("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", lines)

    @unittest.skipUnless(os.geteuid() == 0, "creating files owned by sqlbak needs root")
    def test_sysusers_and_tmpfiles_create_user_and_directories(self):
        root = tempfile.mkdtemp(prefix="sqlbak-sysusers-root-")
        self.addCleanup(shutil.rmtree, root, True)
        shutil.copytree(Package.root, root, symlinks=True, dirs_exist_ok=True)
        os.makedirs(os.path.join(root, "etc"), exist_ok=True)
        r = run(["systemd-sysusers", "--root=" + root, "sqlbak.conf"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc/passwd")) as f:
            user = [l.split(":") for l in f.read().splitlines() if l.startswith("sqlbak:")]
        self.assertEqual(len(user), 1)
        self.assertEqual(user[0][5:], ["/var/lib/sqlbak", "/usr/sbin/nologin"])
        uid, gid = int(user[0][2]), int(user[0][3])
        r = run(["systemd-tmpfiles", "--root=" + root, "--create", "sqlbak.conf"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for d in ("var/lib/sqlbak", "var/backups/sqlbak", "run/sqlbak"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (uid, gid, 0o750), d)


@unittest.skipIf(shutil.which("man") is None, "man is not installed")
class PackageManPageTest(PackageTestCase):
    def render(self, page):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
        return run(["man", "-l", "--warnings=w", self.path(MAN_PAGES[page])], env=env)

    def source(self, page):
        """The page's roff text with escapes for dashes and fonts removed."""
        with gzip.open(self.path(MAN_PAGES[page]), "rt") as f:
            text = f.read()
        return re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\&", "")

    def test_pages_render_without_warnings(self):
        for page in MAN_PAGES:
            r = self.render(page)
            self.assertEqual(r.returncode, 0, page + ": " + r.stderr)
            self.assertEqual(r.stderr, "", page)
            for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"):
                self.assertRegex(r.stdout, r"(?m)^%s$" % section, page)
            if shutil.which("groff"):
                with gzip.open(self.path(MAN_PAGES[page]), "rb") as f:
                    g = run(["groff", "-man", "-ww", "-z"], input=f.read(), text=False)
                self.assertEqual((g.returncode, g.stderr), (0, b""), page)

    def test_sqlbakctl_page_names_every_command_and_option(self):
        text = self.source("sqlbakctl.1")
        self.assertIn("EXIT STATUS", text)
        for status in ("0", "1", "2", "3"):
            self.assertRegex(text, r"(?m)^\.B %s$" % status)
        ctl = self.path("/usr/bin/sqlbakctl")

        def options_and_subcommands(args):
            r = run([ctl] + args + ["--help"])
            self.assertEqual(r.returncode, 0, r.stderr)
            options = set(re.findall(r"(?m)^\s+(?:-\w,)?(--[a-z][a-z-]*)", r.stdout))
            subs = []
            if "Subcommands:" in r.stdout:
                subs = re.findall(r"(?m)^  ([a-z]+)\s", r.stdout.split("Subcommands:")[1])
            return options - {"--help"}, subs

        global_options, commands = options_and_subcommands([])
        self.assertIn("backup", commands)
        for option in global_options:
            self.assertIn(option, text)
        for command in commands:
            options, subs = options_and_subcommands([command])
            self.assertRegex(text, r"(?m)^\.(B|BR|TP|TQ)\b.*\b%s\b" % command, command)
            for option in options:
                self.assertIn(option, text, "%s %s" % (command, option))
            for sub in subs:
                self.assertIn("%s %s" % (command, sub), text)
                sub_options, _ = options_and_subcommands([command, sub])
                for option in sub_options:
                    self.assertIn(option, text, "%s %s %s" % (command, sub, option))

    def test_sqlbakd_page_names_every_option(self):
        text = self.source("sqlbakd.8")
        r = run([self.path("/usr/sbin/sqlbakd"), "--help"])
        for option in set(re.findall(r"(?m)^\s+(?:-\w,)?(--[a-z][a-z-]*)", r.stdout)) - {"--help"}:
            self.assertIn(option, text)
        for word in ("SIGHUP", "SIGTERM", "SQLBAK_DB", "SQLBAK_BACKUP", "SQLBAK_JOB", "EXIT STATUS",
                     "ReadWritePaths=", "WATCHDOG=1", "READY=1"):
            self.assertIn(word, text)

    def test_sqlbak_yaml_page_names_every_key(self):
        text = self.source("sqlbak.yaml.5")
        r = run([self.path("/usr/bin/sqlbakctl"), "config", "example"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path("/etc/sqlbak/sqlbak.yaml")) as f:
            yaml_text = r.stdout + f.read()
        keys = set()
        for line in yaml_text.splitlines():
            line = re.sub(r"^\s*#?\s*-?\s*", "", line)  # commented-out keys count too
            keys.update(re.findall(r"(?:^|[{,]\s*)([a-z_]+):(?:\s|$)", line))
        self.assertIn("busy_timeout", keys)
        self.assertIn("secret_access_key_file", keys)
        for key in keys:
            self.assertRegex(text, r"\b%s\b" % re.escape(key), "sqlbak.yaml(5) does not describe '%s'" % key)


class PackageConfigTest(PackageTestCase):
    def test_shipped_config_passes_check_config(self):
        config = self.path("/etc/sqlbak/sqlbak.yaml")
        for daemon in (self.path("/usr/sbin/sqlbakd"), SQLBAKD):
            r = run([daemon, "--check-config", "-c", config])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("valid, 0 database(s)", r.stdout)
            self.assertEqual(r.stderr, "")

    def test_shipped_config_is_commented_and_backs_up_nothing(self):
        with open(self.path("/etc/sqlbak/sqlbak.yaml")) as f:
            text = f.read()
        comments = [l for l in text.splitlines() if l.lstrip().startswith("#")]
        self.assertGreater(len(comments), 20)
        self.assertRegex(text, r"(?m)^databases: \[\]")


@unittest.skipIf(shutil.which("bash") is None, "bash is not installed")
class PackageCompletionTest(PackageTestCase):
    def complete(self, *words, config_dir=None):
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
                  'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _sqlbakctl; printf "%s\\n" "${COMPREPLY[@]}"')
        r = run(["bash", "-c", script, "bash", self.path(COMPLETION)] + list(words), cwd=config_dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return [w for w in r.stdout.splitlines() if w]

    def test_syntax(self):
        r = run(["bash", "-n", self.path(COMPLETION)])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        r = run(["bash", "-c", 'source "$1" && complete -p sqlbakctl', "bash", self.path(COMPLETION)])
        self.assertIn("-F _sqlbakctl sqlbakctl", r.stdout)

    def test_commands_and_options(self):
        self.assertEqual(self.complete("sqlbakctl", "ba"), ["backup"])
        self.assertEqual(self.complete("sqlbakctl", "re"), ["restore", "report", "reload"])
        self.assertEqual(self.complete("sqlbakctl", "config", ""), ["check", "example"])
        self.assertEqual(self.complete("sqlbakctl", "alert", ""), ["test"])
        self.assertEqual(self.complete("sqlbakctl", "--of"), ["--offline"])
        self.assertEqual(self.complete("sqlbakctl", "backup", "--w"), ["--wait"])
        self.assertEqual(sorted(self.complete("sqlbakctl", "restore", "--")),
                         ["--at", "--force", "--help", "--target", "--to"])

    def test_database_and_target_names_from_the_config(self):
        d = tempfile.mkdtemp(prefix="sqlbak-completion-")
        self.addCleanup(shutil.rmtree, d, True)
        config = os.path.join(d, "sqlbak.yaml")
        with open(config, "w") as f:
            f.write("targets:\n  local: {type: local, path: /b}\n  # old: {}\n  offsite:\n    type: local\n"
                    "    path: /c\ndatabases:\n  - name: shop\n    path: /srv/shop.db\n"
                    "    retention: {keep_daily: 3}\n  - {name: crm, path: /srv/crm.db}\n")
        self.assertEqual(self.complete("sqlbakctl", "-c", config, "backup", ""), ["shop", "crm"])
        self.assertEqual(self.complete("sqlbakctl", "-c", config, "backup", "shop", "c"), ["crm"])
        self.assertEqual(self.complete("sqlbakctl", "--config", config, "list", "--target", ""), ["local", "offsite"])
        self.assertEqual(self.complete("sqlbakctl", "-c", config, "verify", "--db", "s"), ["shop"])


def _getent(db, name):
    try:
        return (pwd.getpwnam if db == "passwd" else grp.getgrnam)(name)
    except KeyError:
        return None


class MachineState:
    """What the root test found before it began, so that it can put it back.
    Also kept in MARKER while the package is installed: CTest kills a test
    that times out with SIGKILL, and the next run then finishes the cleanup."""

    MARKER = "/var/tmp/sqlbak-test-package.json"
    armed = False
    had_user = had_group = False
    had_dirs = {}

    @classmethod
    def save(cls):
        with open(cls.MARKER, "w") as f:
            json.dump({"had_user": cls.had_user, "had_group": cls.had_group, "had_dirs": cls.had_dirs}, f)

    @classmethod
    def load_leftover(cls):
        """The state a killed earlier run left, if this machine has one."""
        try:
            st = os.lstat(cls.MARKER)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != 0:
                return False
            with open(cls.MARKER) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return False
        cls.had_user, cls.had_group = bool(saved["had_user"]), bool(saved["had_group"])
        cls.had_dirs = {str(k): bool(v) for k, v in saved["had_dirs"].items()}
        cls.armed = True
        return True


def package_status():
    r = run(["dpkg-query", "-W", "-f=${Status}", "sqlbak"])
    return r.stdout.strip() if r.returncode == 0 else ""


def restore_machine():
    """Purges the package and removes what the test created. Safe to call twice."""
    if not MachineState.armed:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if package_status() and "not-installed" not in package_status():
        run(["dpkg", "--purge", "sqlbak"], env=env)
    for d, existed in MachineState.had_dirs.items():
        if not existed and os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
    if not MachineState.had_user and _getent("passwd", "sqlbak"):
        run(["userdel", "sqlbak"])
    if not MachineState.had_group and _getent("group", "sqlbak"):
        run(["groupdel", "sqlbak"])
    MachineState.armed = False
    try:
        os.unlink(MachineState.MARKER)
    except OSError:
        pass


@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0,
                     "installing the package needs root (run the tests as root to include this)")
@unittest.skipIf(shutil.which("apt-get") is None or shutil.which("dpkg") is None,
                 "apt-get and dpkg are needed to install the package")
class PackageInstallTest(PackageTestCase):
    """apt-get install, use, reinstall, remove and purge on this machine."""

    def setUp(self):
        super().setUp()
        if MachineState.load_leftover():
            sys.stderr.write("note: cleaning up after an earlier run that was killed (%s)\n" % MachineState.MARKER)
            restore_machine()
        status = package_status()
        if status and "not-installed" not in status:
            self.skipTest("a sqlbak package is already installed here (%s); not touching it" % status)
        for path in ("/etc/sqlbak", "/usr/sbin/sqlbakd", "/usr/bin/sqlbakctl"):
            if os.path.lexists(path):
                self.skipTest("%s exists already; not touching this machine" % path)
        MachineState.had_user = _getent("passwd", "sqlbak") is not None
        MachineState.had_group = _getent("group", "sqlbak") is not None
        MachineState.had_dirs = {d: os.path.exists(d)
                                 for d in ("/var/lib/sqlbak", "/var/backups/sqlbak", "/run/sqlbak")}
        MachineState.save()
        MachineState.armed = True
        self.addCleanup(restore_machine)
        self.env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

    def systemd_running(self):
        return os.path.isdir("/run/systemd/system")

    def test_install_use_and_purge(self):
        deb_dir, deb = os.path.split(Package.deb)
        r = run(["apt-get", "install", "-y", "--no-install-recommends", "./" + deb], cwd=deb_dir, env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("install ok installed", package_status())

        # The user, the group and the directories.
        user, group = _getent("passwd", "sqlbak"), _getent("group", "sqlbak")
        self.assertIsNotNone(user, "no user sqlbak after installation")
        self.assertIsNotNone(group, "no group sqlbak after installation")
        self.assertEqual((user.pw_dir, user.pw_shell, user.pw_gid), ("/var/lib/sqlbak", "/usr/sbin/nologin", group.gr_gid))
        for d in ("/var/lib/sqlbak", "/var/backups/sqlbak", "/run/sqlbak"):
            st = os.stat(d)
            self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                             (user.pw_uid, group.gr_gid, 0o750), d)

        # The config: root:sqlbak 0640, so no warning about its mode.
        st = os.stat("/etc/sqlbak/sqlbak.yaml")
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (0, group.gr_gid, 0o640))
        # The programs, the config, the man pages.
        for argv in (["/usr/sbin/sqlbakd", "--check-config"],
                     ["runuser", "-u", "sqlbak", "--", "/usr/sbin/sqlbakd", "--check-config"],
                     ["/usr/bin/sqlbakctl", "config", "check"]):
            r = run(argv)
            self.assertEqual(r.returncode, 0, " ".join(argv) + ": " + r.stdout + r.stderr)
            self.assertNotIn("readable by", (r.stdout + r.stderr).lower(), " ".join(argv))
        r = run(["dpkg-query", "-W", "-f=${Conffiles}", "sqlbak"])
        self.assertIn("/etc/sqlbak/sqlbak.yaml", r.stdout)
        if shutil.which("man"):
            r = run(["man", "-w", "sqlbakctl"])
            if r.returncode == 0:  # man-db may be configured to skip indexing
                self.assertIn("/usr/share/man/man1/sqlbakctl.1.gz", r.stdout)

        # Nothing enabled or started by surprise.
        self.assertEqual(glob.glob("/etc/systemd/system/*.wants/sqlbakd.service"), [])
        if self.systemd_running():
            r = run(["systemctl", "is-enabled", "sqlbakd.service"])
            self.assertEqual(r.stdout.strip(), "disabled", r.stdout + r.stderr)
            r = run(["systemctl", "is-active", "sqlbakd.service"])
            self.assertNotEqual(r.stdout.strip(), "active", r.stdout)
        else:
            # No systemd to ask (a container): read the unit files as systemctl would.
            r = run(["systemctl", "--root=/", "is-enabled", "sqlbakd.service"])
            if r.stdout.strip():
                self.assertEqual(r.stdout.strip(), "disabled", r.stdout + r.stderr)
            sys.stderr.write("note: systemd is not running here; checked enablement offline only\n")

        # A first backup in the installed layout, as the daemon's user.
        work = tempfile.mkdtemp(prefix="sqlbak-installed-")
        self.addCleanup(shutil.rmtree, work, True)
        os.chmod(work, 0o755)
        db = os.path.join(work, "shop.db")
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE t(x)")
            c.executemany("INSERT INTO t VALUES (?)", [("row %d" % i,) for i in range(100)])
        os.chmod(db, 0o644)
        config = os.path.join(work, "sqlbak.yaml")
        with open("/etc/sqlbak/sqlbak.yaml") as f:
            text = f.read().replace("databases: []", "databases:\n  - name: shop\n    path: %s" % db)
        with open(config, "w") as f:
            f.write(text)
        os.chmod(config, 0o644)
        as_sqlbak = ["runuser", "-u", "sqlbak", "--", "/usr/bin/sqlbakctl", "--offline", "-c", config]
        r = run(as_sqlbak + ["backup"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(as_sqlbak + ["verify", "--all"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.listdir("/var/backups/sqlbak/manifests"))

        # Reinstalling (as an upgrade does) keeps an edited conffile without asking.
        with open("/etc/sqlbak/sqlbak.yaml", "a") as f:
            f.write("# edited by the administrator\n")
        r = run(["dpkg", "-i", Package.deb], env=self.env, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open("/etc/sqlbak/sqlbak.yaml") as f:
            self.assertTrue(f.read().endswith("# edited by the administrator\n"))

        # remove keeps the configuration; purge removes it, and keeps the backups.
        r = run(["dpkg", "--remove", "sqlbak"], env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists("/usr/sbin/sqlbakd"))
        self.assertTrue(os.path.exists("/etc/sqlbak/sqlbak.yaml"))
        r = run(["dpkg", "--purge", "sqlbak"], env=self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(package_status(), "")
        for gone in ("/usr/sbin/sqlbakd", "/usr/bin/sqlbakctl", "/etc/sqlbak", "/var/lib/sqlbak",
                     "/usr/lib/systemd/system/sqlbakd.service", COMPLETION):
            self.assertFalse(os.path.lexists(gone), "%s is still there after dpkg --purge" % gone)
        self.assertTrue(os.listdir("/var/backups/sqlbak/manifests"), "purge must keep the backups")


def main():
    def on_signal(signum, _frame):
        # A CTest timeout: put the machine back, then die of the signal.
        try:
            restore_machine()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
