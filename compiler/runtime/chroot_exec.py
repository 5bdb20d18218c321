"""Run inside the private mount and PID namespace ``compiler.runtime.qemu`` starts (``unshare``), by the
host's Python with ``-I -S`` (standard library only, nothing of pkgc imported): mount ``/proc``, a
small ``/dev`` and the read-only mounts asked for below the root filesystem, ``chroot`` into it, take
the image's working folder and user, find the program on the image's PATH and execute it as the child
of this process, which stays as the namespace's PID 1 (signals reach the command; orphans are reaped).
Every foreign program in the root is a ``#!`` wrapper that runs it under qemu-user
(``compiler.runtime.exec_wrappers``), so the kernel's own script handler does the rest. Every mount lives
and dies with the namespace; nothing is registered with binfmt_misc, nothing under /proc/sys is touched.
What the image runs has no capabilities, even as uid 0 (``drop_privileges``).

Argument: one JSON object (root, argv, env, cwd, uid, gid, groups, mounts). A failure is one
line ``pkgc: ...`` on stderr and exit 127."""

import ctypes
import json
import os
import signal
import subprocess
import sys

PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, LAST_CAP = 24, 38, 63
LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before the chroot: the host's libc is not inside it
DEVICES = {"null": 3, "zero": 5, "full": 7, "random": 8, "urandom": 9, "tty": 0}  # char major 1 (tty: 5, 0)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def fail(message):
    sys.stderr.write(f"pkgc: {message}\n")
    sys.exit(127)


def mount(*args):
    done = subprocess.run(["mount", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode:
        fail(f"mount {' '.join(args)}: {done.stderr.strip()[:200]}")


def prepare(root, mounts):
    mount("-t", "proc", "proc", os.path.join(root, "proc"))
    dev = os.path.join(root, "dev")
    mount("-t", "tmpfs", "-o", "mode=755,size=1m", "pkgc-dev", dev)
    for name, minor in DEVICES.items():
        major = 5 if name == "tty" else 1
        os.mknod(os.path.join(dev, name), 0o20666, os.makedev(major, minor))
        os.chmod(os.path.join(dev, name), 0o666)
    os.mkdir(os.path.join(dev, "shm"), 0o1777)
    mount("-t", "tmpfs", "-o", "mode=1777,size=64m", "pkgc-shm", os.path.join(dev, "shm"))
    for source, target, read_only in mounts:  # the mount points exist: made by pkgc inside the root, links resolved there
        mount("--bind", source, target)
        if read_only:
            mount("-o", "remount,bind,ro", target)


def find_program(name, path):
    if "/" in name:
        return name
    for folder in (path or DEFAULT_PATH).split(":"):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    fail(f"{name!r} is not on the image's PATH ({path[:200]})")


def drop_privileges(groups, gid, uid):
    """The image's user, and no capability for anything it executes, even as uid 0: the bounding set is
    emptied and no set-id program may add any back (a chroot is no wall for a privileged process)."""
    for cap in range(LAST_CAP + 1):
        if LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such capability
            fail(f"cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail(f"cannot set no_new_privs: {os.strerror(ctypes.get_errno())}")


def main():
    spec = json.loads(sys.argv[1])
    root, env = spec["root"], spec["env"]
    prepare(root, spec["mounts"])
    os.chroot(root)
    try:
        os.chdir(spec["cwd"])
    except OSError as exc:
        fail(f"working folder {spec['cwd']}: {exc.strerror}")
    drop_privileges(spec["groups"], spec["gid"], spec["uid"])
    argv = spec["argv"]
    program = find_program(argv[0], env.get("PATH", DEFAULT_PATH))
    child = os.fork()
    if child == 0:
        try:
            os.execve(program, argv, env)  # a wrapped program: its #! line runs it under qemu-user
        except OSError as exc:
            fail(f"cannot run {program}: {exc.strerror}")
    sys.exit(init(child))


def init(child):
    """The namespace's PID 1: the command runs as its child, so SIGTERM to the process group reaches it
    (PID 1 itself ignores it); orphans are reaped; the command's exit status is returned (128 + signal)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        if pid == child:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    main()
