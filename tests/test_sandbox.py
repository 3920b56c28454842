"""Tests for dsm_utils.sandbox: normal programs work, hostile programs are contained and named.

Every hostile program must come back as a clear ``error`` class while the host, the canary files and
this test process stay untouched. Tests marked ``root_only`` also switch the audit-hook layer off to show
that the OS layers (uid drop, rlimits, network and mount namespaces) hold on their own.
"""
from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import textwrap

import pytest

from dsm_utils import sandbox
from dsm_utils.sandbox import (
    TRUNCATION_MARKER,
    extract_program,
    format_output_block,
    run_many,
    run_pot,
    run_program,
)

IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="OS-layer-only checks need the root code path")
_RLIMITS_BEFORE = {r: resource.getrlimit(r) for r in (resource.RLIMIT_NPROC, resource.RLIMIT_AS,
                                                      resource.RLIMIT_CPU, resource.RLIMIT_FSIZE)}


def run(code: str, **kw):
    return run_program(textwrap.dedent(code), **kw)


# ------------------------------------------------------------------ normal programs
def test_print_arithmetic():
    r = run("print(2 + 3 * 4)")
    assert r.ok and r.error is None and r.stdout == "14\n" and r.returncode == 0


def test_installed_packages_import():
    r = run("""
        import math, fractions, sympy, numpy as np
        x = sympy.symbols('x')
        print(sympy.solve(x**2 - 4, x), fractions.Fraction(1, 3) + fractions.Fraction(1, 6),
              int(np.arange(5).sum()), math.comb(5, 2))
    """)
    assert r.ok, r
    assert r.stdout.strip() == "[-2, 2] 1/2 10 10"


def test_solution_function_called_when_nothing_printed():
    r = run_pot("def solution():\n    return 6 * 7\n")
    assert r.ok and r.stdout.strip() == "42"
    # Printing wins: solution() is not called again.
    r = run_pot("def solution():\n    return 1\nprint('printed')\n")
    assert r.stdout.strip() == "printed"
    # run_program itself does not apply the convention.
    assert run_program("def solution():\n    return 1\n").stdout == ""


def test_exception_reported_with_type():
    r = run("print('before')\n1 / 0\n")
    assert not r.ok and r.error == "exception: ZeroDivisionError: division by zero"
    assert r.stdout == "before\n" and "ZeroDivisionError" in r.stderr and "<program>" in r.stderr
    assert run("def f(:\n  pass").error.startswith("exception: SyntaxError")
    assert run("input()").error.startswith("exception: EOFError")  # stdin is /dev/null
    assert run("import sys; sys.exit(3)").error == "exit_code: 3"
    assert run("import sys; print('x'); sys.exit(0)").ok


def test_work_dir_is_private_scratch_and_removed():
    r = run("""
        import os
        open('a.txt', 'w').write('hi')
        print(sorted(os.listdir('.')), open('a.txt').read(), os.getcwd())
    """)
    assert r.ok, r
    listing, content, cwd = r.stdout.split()
    assert listing == "['a.txt']" and content == "hi"
    assert not os.path.exists(cwd)


@root_only
def test_runs_as_unprivileged_uid():
    r = run("import os; print(os.getuid(), os.geteuid(), os.getgroups())")
    uid, euid, groups = r.stdout.split(maxsplit=2)
    assert int(uid) >= sandbox._UID_BASE and int(euid) == int(uid) and groups.strip() == "[]"
    assert {"netns", "rootfs"} <= set(r.isolation), r.isolation


# ------------------------------------------------------------------ hostile programs
def test_infinite_loop_times_out():
    r = run("while True:\n    pass\n", timeout_s=1.0, cpu_s=30)
    assert not r.ok and r.error == "timeout"


def test_cpu_limit():
    r = run("while True:\n    pass\n", timeout_s=30.0, cpu_s=1)
    assert not r.ok and r.error == "cpu_limit"


def test_fork_bomb_os_fork():
    r = run("import os\nwhile True:\n    os.fork()\n")
    assert not r.ok and r.error_class in ("forbidden", "process_limit"), r.error


def test_fork_bomb_multiprocessing():
    r = run("""
        import multiprocessing as mp
        def f():
            while True:
                pass
        ps = [mp.Process(target=f) for _ in range(64)]
        for p in ps:
            p.start()
    """)
    assert not r.ok and r.error_class in ("forbidden", "process_limit"), r.error


@root_only
def test_fork_bomb_contained_by_rlimit_nproc_alone():
    # Audit hooks off: RLIMIT_NPROC on the leased uid stops the bomb; every survivor is killed by uid.
    r = run("import os\nwhile True:\n    os.fork()\n", _audit=False, max_procs=8, timeout_s=10)
    assert not r.ok and r.error == "process_limit", r.error


def test_memory_bomb():
    r = run("x = bytearray(4 * 1024 ** 3)")
    assert r.error == "memory_limit", r.error
    r = run("xs = []\nwhile True:\n    xs.append(' ' * 10 ** 7)\n", memory_mb=256)
    assert r.error == "memory_limit", r.error


def test_huge_file():
    r = run("""
        with open('big.bin', 'wb') as f:
            while True:
                f.write(b'0' * (1 << 20))
    """, max_file_mb=1)
    assert not r.ok and r.error == "file_size_limit", r.error


def test_printing_gigabytes_is_cut_off():
    r = run("while True:\n    print('x' * 10 ** 6)\n", max_output_chars=1000, timeout_s=20)
    assert not r.ok and r.error == "output_limit"
    assert r.truncated and r.stdout.endswith(TRUNCATION_MARKER)
    assert len(r.stdout) <= 1000 + len(TRUNCATION_MARKER)


def test_long_output_is_truncated_not_an_error():
    r = run("print('y' * 100_000)", max_output_chars=500)
    assert r.ok and r.error is None and r.truncated
    assert r.stdout == "y" * 500 + TRUNCATION_MARKER


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary.txt"
    path.write_text("CANARY-SECRET-1234")
    return path


def test_delete_and_overwrite_outside_blocked(canary):
    for code in (
        f"import os; os.remove({str(canary)!r})",
        f"open({str(canary)!r}, 'w').write('pwned')",
        f"import shutil; shutil.rmtree({str(canary.parent)!r})",
        f"import os; os.rename({str(canary)!r}, 'stolen.txt')",
        "open('/tmp/dsm_sandbox_escape.txt', 'w').write('x')",
    ):
        r = run(code)
        assert not r.ok and r.error_class == "forbidden", (code, r.error)
    assert canary.read_text() == "CANARY-SECRET-1234"
    assert not os.path.exists("/tmp/dsm_sandbox_escape.txt")


def test_read_outside_blocked(canary):
    repo_file = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__))),
                             "pyproject.toml")
    for path in (str(canary), "/etc/passwd", repo_file, os.path.expanduser("~/.bashrc"),
                 f"/proc/{os.getpid()}/environ"):
        r = run(f"print(open({path!r}).read())")
        assert not r.ok and r.error_class == "forbidden", (path, r.error)
        assert "CANARY-SECRET" not in r.stdout
    r = run(f"import os; print(os.listdir({str(canary.parent)!r}))")
    assert r.error_class == "forbidden" and "canary" not in r.stdout


@root_only
def test_outside_files_protected_by_os_layers_alone(canary):
    # Audit hooks off: the private root filesystem (Python's dirs read-only, the work dir, nothing else) and
    # the unprivileged uid still keep the canary unread and undeleted.
    r = run(f"""
        import os
        for fn in (lambda: print(open({str(canary)!r}).read()), lambda: os.remove({str(canary)!r}),
                   lambda: print(open('/root/.bashrc').read()), lambda: open('/etc/passwd', 'a')):
            try:
                fn()
            except OSError as e:
                print(type(e).__name__)
    """, _audit=False)
    assert r.ok, r
    assert "CANARY-SECRET" not in r.stdout and r.stdout.split() == ["FileNotFoundError"] * 4
    assert canary.read_text() == "CANARY-SECRET-1234"


@pytest.fixture
def outside_canary():
    """A secret file beside the checkout (a sibling directory), outside the repository and /tmp."""
    import shutil
    import tempfile

    repo = os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__)))
    parent = os.path.dirname(repo)
    base = parent if os.access(parent, os.W_OK) else "/var/tmp"
    d = tempfile.mkdtemp(prefix=".dsm_sandbox_canary_", dir=base)
    path = os.path.join(d, "secret.txt")
    with open(path, "w") as f:
        f.write("OUTSIDE-SECRET-5678")
    os.chmod(d, 0o755)
    os.chmod(path, 0o644)  # world-readable, like most host files
    yield path
    shutil.rmtree(d, ignore_errors=True)


_FORK_EXEC_SHELL = """
import os, _posixsubprocess
r, w = os.pipe()
er, ew = os.pipe()
argv = [b"/bin/sh", b"-c", b"cat {path} /etc/passwd; ls /; echo shell-ran"]
common = (argv, [b"/bin/sh"], True, (w,), None, None, -1, -1, -1, w, -1, w, er, ew, False, False)
try:  # CPython 3.11.x / 3.12+: process_group, gid, gids, uid, umask, preexec_fn, allow_vfork
    pid = _posixsubprocess.fork_exec(*common, -1, None, None, None, -1, None, False)
except TypeError:  # CPython 3.10: gid, gids, uid, umask, preexec_fn
    pid = _posixsubprocess.fork_exec(*common, None, None, None, -1, None)
os.close(w)
os.close(ew)
out = b""
while chunk := os.read(r, 65536):
    out += chunk
err = os.read(er, 4096)
os.waitpid(pid, 0)
print("started pid", pid, "exec error:", err.decode(errors="replace"))
print(out.decode(errors="replace"))
"""


@pytest.mark.parametrize("audit", [True, False], ids=["audit-hook-on", "audit-hook-off"])
def test_shell_started_past_the_audit_hook_cannot_read_host_files(outside_canary, audit):
    # _posixsubprocess is importable and fork_exec raises no audit event: the program starts a process. The
    # private root filesystem has no shell, no /etc and no sibling of the checkout, so nothing leaks.
    r = run(_FORK_EXEC_SHELL.format(path=outside_canary), _audit=audit)
    assert "started pid" in r.stdout or r.error_class in ("forbidden", "process_limit"), r
    assert "OUTSIDE-SECRET" not in r.stdout + r.stderr
    assert "root:" not in r.stdout and "shell-ran" not in r.stdout
    # Plain Python past the hook sees the same thin filesystem.
    r = run(f"""
        import os
        for p in ({outside_canary!r}, "/etc/passwd", "/bin/sh", {os.path.dirname(outside_canary)!r}):
            print(p, os.path.exists(p))
        print(sorted(os.listdir("/")))
    """, _audit=False)
    assert r.ok, r
    lines = r.stdout.splitlines()
    assert all(line.endswith(" False") for line in lines[:4]), lines
    assert not {"etc", "bin", "home", "proc", "sys", "var"} & set(eval(lines[4])), lines[4]


def test_no_private_root_means_no_run(monkeypatch):
    # Fail closed: where the private root filesystem cannot be made, the program does not run at all,
    # unless the user opts into the audit hook alone.
    cfg = dict(sandbox._static_cfg(), root_mountpoint="/nonexistent-dsm-mountpoint")
    monkeypatch.setattr(sandbox, "_static_cfg", lambda: cfg)
    r = run("print('ran')")
    assert not r.ok and r.error.startswith("sandbox_setup_failed: no private root filesystem"), r.error
    assert "DSM_SANDBOX_WEAK" in r.error and r.stdout == ""
    monkeypatch.setenv(sandbox.WEAK_ENV, "1")
    r = run("print('ran')")
    assert r.ok and r.stdout == "ran\n" and "rootfs" not in r.isolation


@pytest.fixture
def listening_server():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv, srv.getsockname()[1]
    srv.close()


def _assert_no_connection(srv):
    with pytest.raises(BlockingIOError):
        srv.accept()


def test_socket_blocked(listening_server):
    srv, port = listening_server
    r = run(f"""
        import socket
        s = socket.create_connection(('127.0.0.1', {port}), timeout=2)
        s.sendall(b'exfiltrated')
    """)
    assert not r.ok and r.error == "network_blocked", r.error
    _assert_no_connection(srv)


@root_only
def test_socket_blocked_by_network_namespace_alone(listening_server):
    srv, port = listening_server
    r = run(f"""
        import socket
        s = socket.create_connection(('127.0.0.1', {port}), timeout=2)
        s.sendall(b'exfiltrated')
    """, _audit=False)
    assert not r.ok and r.error == "network_blocked", r.error
    _assert_no_connection(srv)


def test_environment_secrets_not_visible(monkeypatch):
    monkeypatch.setenv("DSM_SECRET_TOKEN", "tok-abc-SECRET")
    r = run("import os; print(os.environ.get('DSM_SECRET_TOKEN')); print(sorted(os.environ))")
    assert r.ok and r.stdout.splitlines()[0] == "None"
    assert "tok-abc-SECRET" not in r.stdout and "DSM_SECRET_TOKEN" not in r.stdout
    r = run("print(open('/proc/self/environ').read())")  # the child's own environment is clean
    assert "tok-abc-SECRET" not in r.stdout


def test_os_system_and_subprocess_blocked(tmp_path):
    marker = tmp_path / "ran.txt"
    for code in (
        f"import os; os.system('touch {marker}')",
        f"import subprocess; subprocess.run(['touch', {str(marker)!r}])",
        f"import os; os.execv('/usr/bin/touch', ['touch', {str(marker)!r}])",
        f"import os; os.posix_spawn('/usr/bin/touch', ['touch', {str(marker)!r}], {{}})",
        "import os; os.kill(1, 9)",
        "import ctypes; ctypes.CDLL(None).fork()",
    ):
        r = run(code)
        assert not r.ok and r.error_class == "forbidden", (code, r.error)
    assert not marker.exists()


# ------------------------------------------------------------------ helpers
def test_extract_program():
    text = "Let's compute.\n```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```\nDone."
    assert extract_program(text) == "print(2)\n"
    assert extract_program("no code here") is None
    assert extract_program("```py\nx = 1\nprint(x)\n```") == "x = 1\nprint(x)\n"
    assert extract_program("```python\nprint(3)\n") == "print(3)\n"  # generation cut at the stop string


def test_format_output_block():
    assert format_output_block(run("print(7)")) == "```output\n7\n```"
    block = format_output_block(run("print('a')\n1/0"))
    assert block == "```output\na\nZeroDivisionError: division by zero\n```"


def test_run_many_in_order():
    codes = [f"print({i} * {i})" for i in range(6)] + ["while True: pass", "def solution():\n    return 'pot'"]
    rs = run_many(codes, workers=3, pot=True, timeout_s=1.5, progress=True)
    assert [r.stdout.strip() for r in rs[:6]] == [str(i * i) for i in range(6)]
    assert rs[6].error == "timeout" and rs[7].stdout.strip() == "pot"


# ------------------------------------------------------------------ host health (runs last in file order)
def test_host_healthy_after_hostile_suite():
    # No process of any sandbox uid survives, and this process has no stray children.
    lo, hi = sandbox._UID_BASE, sandbox._UID_BASE + sandbox._UID_POOL
    survivors = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if lo <= uid < hi and fields[0] not in ("Z", "X"):
                survivors.append(name)
            if int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
                # Other modules' workers (e.g. the grader's) may be our children in a full run: only
                # sandbox interpreters (`python -I -S -c <bootstrap>`) count as strays.
                try:
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv[1:3] == [b"-I", b"-S"]:
                    survivors.append(f"child:{name}")
    assert survivors == []
    # This process keeps its limits and can still fork a normal subprocess.
    assert {r: resource.getrlimit(r) for r in _RLIMITS_BEFORE} == _RLIMITS_BEFORE
    out = subprocess.run([sys.executable, "-c", "print('alive')"], capture_output=True, text=True, check=True)
    assert out.stdout == "alive\n"
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
