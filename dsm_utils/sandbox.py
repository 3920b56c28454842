"""Sandboxed execution of model-written Python (program-of-thought and tool-integrated evaluation).

DeepSeekMath evaluates program-of-thought (PoT) and tool-integrated reasoning by running Python the model
wrote. That code is untrusted: it may loop forever, fork-bomb, eat memory, write huge files, touch files
outside its scratch dir, open sockets or read secrets. :func:`run_program` runs each program in a fresh,
isolated interpreter (``sys.executable -I -S``) and reports what happened as a :class:`SandboxResult` whose
``error`` is a short class ("timeout", "cpu_limit", "memory_limit", "file_size_limit", "process_limit",
"output_limit", "network_blocked", "forbidden: ...", "exception: ZeroDivisionError: ...").

Layers (outer ones are the real boundary; the audit hook is defence in depth, since CPython audit hooks
can be bypassed by determined code, e.g. ``_posixsubprocess.fork_exec`` or ctypes):

* parent side: own session/process group, wall-clock timeout that SIGKILLs the group (and, as root, every
  process of the sandbox uid), stdout/stderr read incrementally with caps, empty temp working dir removed
  afterwards, scrubbed environment (PATH/LANG/HOME/TMPDIR and thread-count vars only);
* child, before any user code: ``unshare`` of a new network namespace (only a downed loopback: no network)
  and a new mount namespace (as root directly; otherwise inside a new user namespace) in which the process
  ``pivot_root``s into a **private root filesystem** made only of Python's installation (stdlib, extension
  modules, site-packages, and the shared-library dirs they load from), bind-mounted read-only, plus
  ``/dev/{null,zero,random,urandom}`` and the scratch work dir; the host's root is then unmounted from the
  namespace, so no shell, no ``/etc``, ``/proc``, ``/home``, repository or sibling directory exists for the
  program, whatever it runs. Where no such root can be made (no root and user namespaces disabled) the
  program is not run (``sandbox_setup_failed``) unless ``DSM_SANDBOX_WEAK=1``;
  rlimits CPU / AS / FSIZE / NPROC / NOFILE / CORE; ``no_new_privs``; as root, a drop to a dedicated
  unprivileged uid leased per concurrent sandbox (so RLIMIT_NPROC is per sandbox and leftovers can be
  killed by uid);
* an audit hook (``sys.addaudithook``) that refuses sockets, fork/exec/spawn/subprocess/os.system,
  signals to other processes, ctypes symbol lookups, writes/deletes outside the work dir and reads outside
  the work dir and Python's library dirs.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SandboxResult",
    "run_program",
    "run_pot",
    "run_many",
    "extract_program",
    "format_output_block",
]

TRUNCATION_MARKER = "\n...[output truncated]"
_STDERR_MARKER = "...[stderr truncated]...\n"

# Uids leased to concurrently running sandboxes when we are root. A dedicated uid per sandbox makes
# RLIMIT_NPROC a per-sandbox budget and lets us kill every survivor by uid afterwards.
_UID_BASE = 1_600_000
_UID_POOL = 256
_LOCK_DIR = Path(tempfile.gettempdir()) / "dsm_sandbox_uids"


@dataclass
class SandboxResult:
    """Outcome of one sandboxed program.

    ``ok`` is True when the program finished normally and broke no rule. ``stdout`` is what it printed
    (head kept, ``TRUNCATION_MARKER`` appended when cut; truncation alone is not an error). ``stderr`` keeps
    the tail (tracebacks end there). ``error`` is None or a short class, see the module docstring.
    """

    ok: bool
    stdout: str
    stderr: str
    error: str | None
    returncode: int | None
    wall_s: float
    truncated: bool = False
    #: OS isolation layers the child reported ("netns", "mountns", "uid=...", "userns+netns", failures).
    isolation: list[str] = field(default_factory=list)

    @property
    def error_class(self) -> str | None:
        """The part of ``error`` before the first colon ("exception", "forbidden", "timeout", ...)."""
        return None if self.error is None else self.error.split(":", 1)[0]


# --------------------------------------------------------------------------------------------------
# The child-side bootstrap. It runs as `python -I -S -c _BOOTSTRAP <json config>` and everything in it
# happens before the user's code is compiled. Kept self-contained: the child must not import dsm_utils
# (the repo is hidden from it).
_BOOTSTRAP = r'''
def _sandbox_main():
    import sys, os, json, resource, signal, ctypes, builtins, types
    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    main_pid = os.getpid()
    sys.dont_write_bytecode = True  # a .pyc write would look like a write outside the work dir
    # Started with -S (site's .pth processing, e.g. editable-install finders, costs ~20 ms): add the
    # environment's site-packages ourselves.
    for d in cfg["site_dirs"]:
        if d not in sys.path:
            sys.path.append(d)

    def status(**kw):
        try:
            os.write(status_fd, (json.dumps(kw) + "\n").encode())
        except Exception:
            pass

    work = cfg["workdir"]
    with open(cfg["code_path"], encoding="utf-8") as f:
        code = f.read()
    os.remove(cfg["code_path"])

    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
    MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV = 4096, 16384, 1 << 18, 2, 4
    notes = []

    def mount(src, dst, fstype, flags, data):
        def b(x):
            return None if x is None else x.encode()
        if libc.mount(b(src), b(dst), b(fstype), flags, b(data)) != 0:
            raise OSError(ctypes.get_errno(), "mount %s" % dst)

    def private_root():
        # A new root filesystem made only of Python's dirs (read-only), a few /dev nodes and the work dir;
        # the host's root is unmounted from this namespace, so no other host file can be reached by any path.
        MS_REMOUNT, MS_RDONLY, MNT_DETACH = 32, 1, 2
        mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        keep = []
        for k in cfg["keep"]:
            try:
                st = os.statvfs(k)
                # Flags a user namespace may not drop on remount (nosuid, nodev, noexec, atime modes).
                locked = (st.f_flag & (2 | 4 | 8 | 1024 | 2048)) | (0x200000 if st.f_flag & 4096 else 0)
                keep.append((k, os.open(k, os.O_PATH | os.O_DIRECTORY), locked))
            except OSError:
                pass
        devs = []
        for d in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"):
            try:
                devs.append((d, os.open(d, os.O_PATH)))
            except OSError:
                pass
        work_fd = os.open(work, os.O_PATH | os.O_DIRECTORY)
        new = cfg["root_mountpoint"]
        mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1024k,mode=755")
        for k, fd, locked in keep:
            t = new + k
            os.makedirs(t, 0o755, exist_ok=True)
            mount("/proc/self/fd/%d" % fd, t, None, MS_BIND | MS_REC, None)
            mount(None, t, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | locked, None)
            os.close(fd)
        for d, fd in devs:
            t = new + d
            os.makedirs(os.path.dirname(t), 0o755, exist_ok=True)
            os.close(os.open(t, os.O_CREAT | os.O_WRONLY, 0o644))
            mount("/proc/self/fd/%d" % fd, t, None, MS_BIND, None)
            os.close(fd)
        for link, target in cfg["links"]:
            if not os.path.lexists(new + link):
                os.makedirs(os.path.dirname(new + link), 0o755, exist_ok=True)
                os.symlink(target, new + link)
        os.makedirs(new + work, 0o755, exist_ok=True)
        mount("/proc/self/fd/%d" % work_fd, new + work, None, MS_BIND, None)
        os.close(work_fd)
        os.makedirs(new + "/.oldroot", 0o700)
        nr = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(os.uname().machine)
        if nr is None or libc.syscall(nr, new.encode(), (new + "/.oldroot").encode()) != 0:
            raise OSError(ctypes.get_errno(), "pivot_root")
        os.chdir("/")
        if libc.umount2(b"/.oldroot", MNT_DETACH) != 0:
            raise OSError(ctypes.get_errno(), "umount old root")
        os.rmdir("/.oldroot")
        mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)

    is_root = os.geteuid() == 0
    if cfg["isolate"]:
        if is_root:
            if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) == 0:
                notes.append("netns")
                try:
                    private_root()
                    notes.append("rootfs")
                except OSError as e:
                    notes.append("rootfs-failed:%s" % e)
            elif libc.unshare(CLONE_NEWNET) == 0:
                notes.append("netns")
        else:
            uid0, gid0 = os.getuid(), os.getgid()
            if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) == 0:
                # Map our own ids 1:1, or file creation in the work dir would fail with EOVERFLOW.
                try:
                    for fn, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid0, uid0)),
                                     ("gid_map", "%d %d 1" % (gid0, gid0))):
                        with open("/proc/self/" + fn, "w") as f:
                            f.write(text)
                    notes.append("userns+netns")
                    private_root()
                    notes.append("rootfs")
                except OSError as e:
                    notes.append("rootfs-failed:%s" % e)
            else:
                notes.append("userns-failed:errno=%d" % ctypes.get_errno())
        if "rootfs" not in notes and cfg["require_rootfs"]:
            status(event="setup_failed", notes=notes)
            os._exit(71)

    def lim(which, soft, hard=None):
        hard = soft if hard is None else hard
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError) as e:
            notes.append("rlimit-failed:%s" % e)

    lim(resource.RLIMIT_CORE, 0)
    lim(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)  # SIGXCPU at soft, SIGKILL at hard
    lim(resource.RLIMIT_AS, cfg["memory_bytes"])
    lim(resource.RLIMIT_FSIZE, cfg["file_bytes"])
    lim(resource.RLIMIT_NOFILE, 256)
    lim(resource.RLIMIT_NPROC, cfg["nproc"])
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries cannot regain privileges
    if is_root:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
        if os.getuid() == 0 or os.geteuid() == 0:
            os._exit(70)
        notes.append("uid=%d" % os.getuid())
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG (cleared by setuid, so set it after)
    os.chdir(work)
    allowed_read = tuple(cfg["read_roots"]) + (work, "/proc/%d" % main_pid)
    sys.path[:] = [p for p in sys.path if any(p == r or p.startswith(r + "/") for r in allowed_read)]
    status(event="ready", notes=notes)

    class SandboxViolation(PermissionError):
        pass
    Violation = SandboxViolation
    SandboxViolation.__qualname__ = SandboxViolation.__name__
    SandboxViolation.__module__ = "sandbox"

    work_prefix = work + "/"
    read_prefixes = tuple(r.rstrip("/") + "/" for r in allowed_read)
    read_exact = frozenset(allowed_read) | frozenset(cfg["read_files"])
    write_exact = frozenset(cfg["write_files"])
    proc_events = frozenset(cfg["proc_events"])
    path_mut_events = frozenset(cfg["path_events"])
    deny_events = frozenset(cfg["deny_events"])
    wflags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    busy = [False]
    my_pid = os.getpid

    def violation(kind, detail):
        status(event="violation", kind=kind, detail=detail[:300])
        raise Violation("sandbox: %s (%s)" % (kind, detail[:200]))

    def resolve(p):
        if isinstance(p, int) or p is None:
            return None
        p = os.fsdecode(p)
        return os.path.realpath(os.path.join(os.getcwd(), p))

    def can_write(p):
        return p is None or p == work or p.startswith(work_prefix) or p in write_exact

    def can_read(p):
        return p is None or p in read_exact or p.startswith(read_prefixes)

    def hook(event, args):
        if busy[0]:
            return
        busy[0] = True
        try:
            if event == "open":
                path, mode, flags = args
                p = resolve(path)
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & wflags)
                if writing and not can_write(p):
                    violation("forbidden", "write %s" % p)
                if not can_read(p):
                    violation("forbidden", "read %s" % p)
            elif event.startswith("socket."):
                violation("network_blocked", event)
            elif event in proc_events:
                violation("forbidden", event)
            elif event in ("os.listdir", "os.scandir"):
                p = resolve(args[0] if args and args[0] is not None else ".")
                if not can_read(p):
                    violation("forbidden", "list %s" % p)
            elif event in path_mut_events:
                for a in args:
                    if isinstance(a, (str, bytes, os.PathLike)) and not can_write(resolve(a)):
                        violation("forbidden", "%s %s" % (event, a))
            elif event in ("os.kill", "os.killpg"):
                if event == "os.killpg" or args[0] not in (0, my_pid()):
                    violation("forbidden", event)
            elif event in deny_events or event.startswith("ctypes.dl"):
                violation("forbidden", event)
        finally:
            busy[0] = False

    # The user's program runs as a fresh __main__; tracebacks show its lines via linecache.
    fname = "<program>"
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main

    class Counting:
        def __init__(self, inner):
            self._inner, self.n = inner, 0
        def write(self, s):
            self.n += len(s)
            return self._inner.write(s)
        def __getattr__(self, name):
            return getattr(self._inner, name)

    sys.stdout.reconfigure(errors="backslashreplace")
    out = Counting(sys.stdout)
    sys.stdout = out
    if cfg["audit"]:
        sys.addaudithook(hook)
    rc = 0
    try:
        compiled = compile(code, fname, "exec")
        exec(compiled, main.__dict__)
        if cfg["pot"] and out.n == 0 and callable(main.__dict__.get("solution")):
            print(main.__dict__["solution"]())
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            sys.stderr.write(str(e.code) + "\n")
    except BaseException as e:
        rc = 1
        if os.getpid() == main_pid:
            try:
                import linecache, traceback
                linecache.cache[fname] = (len(code), None, code.splitlines(True), fname)
                # Show the user's frames and library frames, not the bootstrap/audit-hook ones.
                frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != "<string>"]
                head = ["Traceback (most recent call last):\n"] + traceback.format_list(frames) if frames else []
                sys.stderr.write("".join(head + traceback.format_exception_only(type(e), e)))
            except BaseException:
                pass
            status(event="exception", type=type(e).__name__, msg=str(e)[:300],
                   errno=getattr(e, "errno", None))
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    if os.getpid() != main_pid:  # a forked copy (only possible when the audit layer is off)
        os._exit(rc or 0)
    status(event="done", rc=rc)
    os._exit(rc)

_sandbox_main()
'''

_PROC_EVENTS = (
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.setns", "os.unshare",
)
_PATH_EVENTS = (
    "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink", "os.truncate", "os.chmod", "os.chown",
    "os.mkdir", "os.utime", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "os.mkfifo",
    "os.mknod", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
    "shutil.copytree", "shutil.chown", "shutil.make_archive", "shutil.unpack_archive",
)
_DENY_EVENTS = (
    "ctypes.cdata", "ctypes.call_function", "resource.setrlimit", "resource.prlimit", "sys.addaudithook",
    "gc.get_referrers", "gc.get_referents", "gc.get_objects", "os.chroot", "os.setuid", "webbrowser.open",
)


def _nest_free(dirs) -> list[str]:
    """Real paths of ``dirs`` that exist, without those nested in others."""
    out: list[str] = []
    for d in sorted({os.path.realpath(d) for d in dirs if d and os.path.isdir(d)}, key=len):
        if not any(d == o or d.startswith(o + "/") for o in out):
            out.append(d)
    return out


def _python_dirs() -> list[str]:
    """Directories the child interpreter must be able to read (stdlib, extension modules, site-packages)."""
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            dirs.add(p)
    for p in sys.path:
        if p and os.path.isdir(p) and ("site-packages" in p or "lib-dynload" in p or p.endswith(".zip")):
            dirs.add(p)
    for base in (sys.base_prefix, sys.base_exec_prefix):
        base = os.path.realpath(base)
        if base not in ("/usr", "/"):  # a private prefix (e.g. /usr/local, conda): libpython and friends
            dirs.add(os.path.join(base, "lib"))
    return _nest_free(dirs)


def _system_lib_dirs() -> list[str]:
    """Shared libraries that extension modules load (libc, libffi, libmpdec, ...): the multiarch dirs, or /lib
    and /usr/lib without multiarch, plus the dirs of every library this interpreter has mapped."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    cands = ([f"/lib/{arch}", f"/usr/lib/{arch}"] if arch else ["/lib", "/usr/lib"]) + ["/lib64", "/usr/lib64"]
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(maxsplit=5)[-1].strip()
                if path.startswith("/") and ".so" in os.path.basename(path):
                    cands.append(os.path.dirname(path))
    except OSError:
        pass
    return _nest_free(cands)


def _root_links() -> list[tuple[str, str]]:
    """Top-level symlinks the dynamic loader's paths go through (merged /usr: /lib -> usr/lib)."""
    return [(p, os.readlink(p)) for p in ("/lib", "/lib64", "/lib32", "/libx32") if os.path.islink(p)]


def _site_dirs() -> list[str]:
    """site-packages of the running environment (real paths), in sys.path order (the child starts with -S)."""
    out: list[str] = []
    for p in [sysconfig.get_paths().get(k) for k in ("purelib", "platlib")] + [
            p for p in sys.path if p.endswith("site-packages")]:
        if p and os.path.isdir(p) and os.path.realpath(p) not in out:
            out.append(os.path.realpath(p))
    return out


_STATIC_CACHE: dict = {}
#: Set to 1 to run programs where no private root filesystem can be made (no root, user namespaces disabled):
#: then only the audit hook and rlimits guard the host's files.
WEAK_ENV = "DSM_SANDBOX_WEAK"


def _static_cfg() -> dict:
    if not _STATIC_CACHE:
        py = _python_dirs()
        _STATIC_CACHE.update(
            keep=_nest_free(py + _system_lib_dirs()),
            links=_root_links(),
            root_mountpoint="/tmp",
            site_dirs=_site_dirs(),
            read_roots=sorted(set(py) | {"/usr/lib", "/usr/lib64", "/usr/share", "/lib", "/lib64"}),
            read_files=["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/tty"],
            write_files=["/dev/null"],
            proc_events=list(_PROC_EVENTS),
            path_events=list(_PATH_EVENTS),
            deny_events=list(_DENY_EVENTS),
        )
    return _STATIC_CACHE


def _child_env(workdir: str) -> dict[str, str]:
    """A minimal environment: nothing inherited, so no tokens or keys leak into the program."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
    }
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[k] = "1"  # threads count against RLIMIT_NPROC; one is plenty for PoT arithmetic
    return env


class _UidLease:
    """An exclusive sandbox uid, held through an flock (released automatically if we die)."""

    def __init__(self) -> None:
        _LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        start = (os.getpid() * 7 + threading.get_ident()) % _UID_POOL
        for i in range(_UID_POOL):
            n = (start + i) % _UID_POOL
            fd = os.open(_LOCK_DIR / f"{n}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, _UID_BASE + n
            _kill_uid(self.uid)  # survivors of a crashed earlier holder
            return
        raise RuntimeError("no free sandbox uid (too many concurrent sandboxes)")

    def release(self) -> None:
        os.close(self.fd)  # closing drops the flock


def _pids_where(pred) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if pred(int(name)):
                    out.append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _live_with_uid(pid: int, uid: int) -> bool:
    """True when ``pid`` belongs to ``uid`` and is not a zombie (zombies ignore signals; reaping is
    their parent's job: ours via wait4, orphans' via init)."""
    if os.stat(f"/proc/{pid}").st_uid != uid:
        return False
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def _proc_sid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[3])  # state ppid pgrp session ...


def _kill_uid(uid: int) -> None:
    """SIGKILL every process owned by ``uid`` until none is left (the count is bounded by RLIMIT_NPROC)."""
    for _ in range(50):
        pids = _pids_where(lambda p: _live_with_uid(p, uid))
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def _kill_session(sid: int, scan: bool = True) -> None:
    """Kill the sandbox's process group and (``scan``) any other member of its session."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if not scan:
        return
    for p in _pids_where(lambda p: _proc_sid(p) == sid):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _own_proc_count() -> int:
    uid = os.getuid()
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status") as f:
                    txt = f.read()
                if f"\nUid:\t{uid}\t" in txt:
                    m = re.search(r"\nThreads:\t(\d+)", txt)
                    n += int(m.group(1)) if m else 1
            except OSError:
                pass
    return n


def _classify_exception(st: dict) -> str:
    t, msg, errno_ = st.get("type", "Exception"), st.get("msg", ""), st.get("errno")
    if t == "MemoryError" or t.endswith("MemoryError"):
        return "memory_limit"
    if errno_ == 27 or "File too large" in msg:  # EFBIG from RLIMIT_FSIZE (Python ignores SIGXFSZ)
        return "file_size_limit"
    if (errno_ == 11 and t in ("BlockingIOError", "OSError")) or "can't start new thread" in msg:
        return "process_limit"  # fork/thread creation refused by RLIMIT_NPROC
    if errno_ in (101, 111, 113) and t in ("OSError", "ConnectionRefusedError"):
        return "network_blocked"  # ENETUNREACH etc. inside the empty network namespace
    return f"exception: {t}: {msg}" if msg else f"exception: {t}"


def run_program(
    code: str,
    *,
    timeout_s: float = 5.0,
    cpu_s: float = 5.0,
    memory_mb: int = 512,
    max_procs: int = 16,
    max_file_mb: int = 1,
    max_output_chars: int = 4096,
    _pot: bool = False,
    _audit: bool = True,
    _isolate: bool = True,
) -> SandboxResult:
    """Run untrusted Python ``code`` in an isolated child interpreter and report what happened.

    Limits: ``timeout_s`` wall clock (the whole process group is killed), ``cpu_s`` CPU seconds
    (RLIMIT_CPU), ``memory_mb`` address space (RLIMIT_AS), ``max_procs`` processes+threads (RLIMIT_NPROC,
    per sandbox when running as root), ``max_file_mb`` per written file (RLIMIT_FSIZE), ``max_output_chars``
    of stdout kept (more is cut with a marker; a program that keeps printing past 64x the cap, at least
    1 MB, is killed with error "output_limit"). ``_audit``/``_isolate`` exist so tests can check the OS
    layers alone; leave them on.
    """
    t0 = time.monotonic()
    root = os.geteuid() == 0
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="dsm_sandbox_"))
    lease = _UidLease() if root else None
    proc = None
    timed_out = output_killed = False
    out_buf, err_buf, status_buf = bytearray(), bytearray(), bytearray()
    out_total = err_total = 0
    keep_bytes = max_output_chars * 4 + 4  # utf-8 worst case; decoded and cut to chars below
    hard_cap = max(1_000_000, 64 * max_output_chars)
    rusage = None
    rc = None
    try:
        code_path = os.path.join(workdir, ".program.py")
        with open(code_path, "w", encoding="utf-8") as f:
            f.write(code)
        if lease is not None:
            os.chown(workdir, lease.uid, lease.uid)
            os.chown(code_path, lease.uid, lease.uid)
        os.chmod(workdir, 0o700)
        cfg = dict(_static_cfg())
        st_r, st_w = os.pipe()
        cfg.update(
            status_fd=st_w, workdir=workdir, code_path=code_path,
            uid=lease.uid if lease else os.getuid(), gid=lease.uid if lease else os.getgid(),
            cpu_s=max(1, int(round(cpu_s))), memory_bytes=int(memory_mb) << 20,
            file_bytes=int(max_file_mb * (1 << 20)),
            nproc=max_procs if root else _own_proc_count() + max_procs,
            pot=_pot, audit=_audit, isolate=_isolate, require_rootfs=os.environ.get(WEAK_ENV) != "1",
        )
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(cfg)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=_child_env(workdir), cwd=workdir, start_new_session=True, pass_fds=(st_w,),
            )
        finally:
            os.close(st_w)
        sid = proc.pid

        def _kill_all() -> None:
            # As root every sandbox process runs as the leased uid, so killing by uid covers escapees
            # that left the session; otherwise we sweep the session.
            _kill_session(sid, scan=lease is None)
            if lease:
                _kill_uid(lease.uid)
        deadline = t0 + timeout_s
        sel = selectors.DefaultSelector()
        pidfd = os.pidfd_open(proc.pid)
        sel.register(proc.stdout, selectors.EVENT_READ, "out")
        sel.register(proc.stderr, selectors.EVENT_READ, "err")
        sel.register(st_r, selectors.EVENT_READ, "status")
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        exited = False
        open_streams = 3
        while open_streams or not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not timed_out and not exited:
                    timed_out = True
                    _kill_all()
                    deadline = time.monotonic() + 2.0  # grace to drain the pipes
                    continue
                break
            for key, _ in sel.select(remaining):
                if key.data == "exit":
                    exited = True
                    sel.unregister(pidfd)
                    # Anything the program left behind would keep the pipes open: kill it now.
                    _kill_all()
                    continue
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.data == "out":
                    out_total += len(chunk)
                    if len(out_buf) < keep_bytes:
                        out_buf += chunk[: keep_bytes - len(out_buf)]
                    if out_total > hard_cap and not output_killed and not exited:
                        output_killed = True
                        _kill_all()
                elif key.data == "err":
                    err_total += len(chunk)
                    err_buf += chunk
                    if len(err_buf) > 2 * keep_bytes:
                        del err_buf[: len(err_buf) - keep_bytes]
                    if err_total > hard_cap and not output_killed and not exited:
                        output_killed = True
                        _kill_all()
                elif len(status_buf) < 1_000_000:
                    status_buf += chunk
        sel.close()
        os.close(pidfd)
        if not exited:  # pipes stalled past the grace period
            _kill_all()
        _, wstatus, rusage = os.wait4(proc.pid, 0)
        rc = os.waitstatus_to_exitcode(wstatus)
        proc.returncode = rc
    finally:
        if proc is not None:
            _kill_session(proc.pid, scan=lease is None)
            for s in (proc.stdout, proc.stderr):
                if s:
                    s.close()
        if "st_r" in locals():
            try:
                os.close(st_r)
            except OSError:
                pass
        if lease is not None:
            _kill_uid(lease.uid)
            lease.release()
        shutil.rmtree(workdir, ignore_errors=True)

    # ---- interpret what happened
    events = []
    for line in bytes(status_buf).decode("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    ready_ev = next((e for e in events if e.get("event") == "ready"), None)
    ready = ready_ev is not None
    setup_failed = next((e for e in events if e.get("event") == "setup_failed"), None)
    violations = [e for e in events if e.get("event") == "violation"]
    exc = next((e for e in events if e.get("event") == "exception"), None)
    stdout = out_buf.decode("utf-8", "replace")
    truncated = out_total > len(out_buf) or len(stdout) > max_output_chars
    if truncated:
        stdout = stdout[:max_output_chars] + TRUNCATION_MARKER
    stderr = err_buf.decode("utf-8", "replace")
    if err_total > len(err_buf) or len(stderr) > max_output_chars:
        stderr = _STDERR_MARKER + stderr[-max_output_chars:]
    cpu_used = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0

    error: str | None
    if timed_out:
        error = "timeout"
    elif output_killed:
        error = "output_limit"
    elif violations:
        v = violations[0]
        error = v["kind"] if v["kind"] == "network_blocked" else f"{v['kind']}: {v['detail']}"
    elif rc is not None and rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= cfg["cpu_s"] - 0.05):
            error = "cpu_limit"
        elif sig == signal.SIGXFSZ:
            error = "file_size_limit"
        elif "MemoryError" in stderr or "out of memory" in stderr.lower():
            error = "memory_limit"
        else:
            error = f"killed: {signal.Signals(sig).name}"
    elif exc is not None:
        error = _classify_exception(exc)
    elif setup_failed is not None:
        error = (f"sandbox_setup_failed: no private root filesystem ({', '.join(setup_failed.get('notes', []))}); "
                 f"it needs root or unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
                 f"or set {WEAK_ENV}=1 to rely on the audit hook alone")
    elif not ready:
        error = f"sandbox_setup_failed: rc={rc}: {stderr.strip()[-200:]}"
    elif rc:
        error = f"exit_code: {rc}"
    else:
        error = None
    return SandboxResult(
        ok=error is None, stdout=stdout, stderr=stderr, error=error, returncode=rc,
        wall_s=time.monotonic() - t0, truncated=truncated,
        isolation=list(ready_ev.get("notes", [])) if ready_ev else [],
    )


def require_isolation() -> list[str]:
    """Check that this machine can give programs a private root filesystem; raise a clear error if not.

    Returns the isolation layers a trivial program got (``make install`` runs this once).
    """
    r = run_program("print('ok')")
    if not r.ok or "rootfs" not in r.isolation:
        raise RuntimeError(f"the PoT sandbox cannot isolate programs here: {r.error or r.isolation}")
    return r.isolation


def run_pot(code: str, **limits) -> SandboxResult:
    """Program-of-thought convention: the answer is what the program prints; if it prints nothing but
    defines ``solution()``, that function is called and its return value printed."""
    return run_program(code, _pot=True, **limits)


_FENCE_RE = re.compile(r"```[ \t]*(?:python|py|python3)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_program(text: str) -> str | None:
    """The last ```python fenced block of a model output (an unterminated final block counts), or None."""
    blocks = _FENCE_RE.findall(text)
    if blocks:
        return blocks[-1]
    m = re.search(r"```[ \t]*(?:python|py|python3)[ \t]*\r?\n((?:(?!```).)*)\Z", text,
                  re.DOTALL | re.IGNORECASE)
    return m.group(1) if m else None


def run_many(
    codes: list[str],
    workers: int | None = None,
    *,
    pot: bool = False,
    progress: bool = False,
    desc: str = "sandbox",
    **limits,
) -> list[SandboxResult]:
    """Run many programs in parallel (threads launching sandboxed subprocesses); results in input order.

    ``pot=True`` applies the :func:`run_pot` convention; ``progress=True`` shows a tqdm bar.
    """
    if workers is None:
        workers = max(1, min(8, os.cpu_count() or 1))
    fn = run_pot if pot else run_program
    results: list[SandboxResult | None] = [None] * len(codes)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(codes), desc=desc)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        futs = {ex.submit(fn, c, **limits): i for i, c in enumerate(codes)}
        from concurrent.futures import as_completed

        for fut in as_completed(futs):
            results[futs[fut]] = fut.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results  # type: ignore[return-value]


def format_output_block(result: SandboxResult) -> str:
    """Tool-integrated reasoning: the ```output block appended to the model's context after its code."""
    text = result.stdout.rstrip("\n")
    if not result.ok:
        err = result.error or "error"
        if err.startswith("exception: "):
            err = err[len("exception: "):]
        elif err == "timeout":
            err = "TimeoutError: the program ran past its time limit"
        text = (text + "\n" if text else "") + err
    return f"```output\n{text}\n```"
