"""Run an image of another platform on this host with qemu-user, invoked explicitly: no container
engine, no binfmt_misc registration, nothing under /proc/sys touched.

``QemuContainer`` unpacks the image's root filesystem into pkgc's cache (``compiler.runtime.rootfs``),
copies the static qemu binary of the platform (``Platform.qemu``, Debian's qemu-user-static) and the
host's static busybox into ``/.pkgc-qemu/``, wraps every foreign program in a ``#!`` script that runs it
as ``/.pkgc-qemu/qemu-<machine>-static PROGRAM ARGS`` (``compiler.runtime.exec_wrappers``: so a program
may start another) and runs commands as ``unshare --mount --pid --fork --kill-child`` + ``chroot ROOT
PROGRAM ARGS`` (``compiler.runtime.chroot_exec``) with the image config's Env, WorkingDir and User. The private mount namespace holds /proc, /dev and any read-only mounts (a model
folder); the private PID namespace ends every process the command started when it ends, so stopping a
server is one kill of its process group. The root filesystem is removed when the context ends.

Needs root (chroot, mounts), qemu-user-static and busybox-static: without them ``QemuUnavailable``
(exit 2) says so."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import PkgcError, ResolveError, excerpt
from compiler.oci.store import OciStore
from compiler.platform import Platform
from compiler.runtime.exec_wrappers import has_interpreter, launcher_dir, wrap_programs
from compiler.runtime.image_layers import PlatformImage, mapping, open_stored
from compiler.runtime.kept_root import kept_root
from compiler.runtime.image_user import ACCOUNTS_LIMIT, ProcessUser, process_env, process_user
from compiler.runtime.rootfs import RootfsLimits, RootfsStats, make_folder, read_file, rootfs_folder, unpack_rootfs

QEMU_DIR = Path("/usr/bin")
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: runs the wrappers' #! lines with no library
SHIM = Path(__file__).with_name("chroot_exec.py")
LOG_LIMIT = 1 << 20  # the tail of a server's log read back
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
UNSHARE = ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child")


class QemuUnavailable(PkgcError):
    """This host cannot run a foreign image: not root, no qemu-user-static, no unshare (exit 2)."""


@dataclass(frozen=True)
class Mount:
    source: Path  # a host folder or file
    target: str  # absolute, in the image
    read_only: bool = True


def _port_free(port: int) -> bool:
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1")):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no owner
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


class QemuProcess:
    """A command started in the background (a server); its output goes to ``log``."""

    def __init__(self, popen: subprocess.Popen, log: Path, port: int | None):
        self.popen, self.log, self.port = popen, log, port

    @property
    def id(self) -> str:
        return f"qemu-{self.popen.pid}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        """The last ``LOG_LIMIT`` bytes of what the command printed."""
        try:
            with open(self.log, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                fh.seek(max(0, size - LOG_LIMIT))
                return fh.read(LOG_LIMIT).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM to the process group, SIGKILL after ``STOP_GRACE`` s; the namespace's init dying
        ends every process in it. Returns the exit status."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        _signal_group(self.popen.pid, signal.SIGKILL)  # anything left in the group
        return self.popen.returncode


def _empty_folder(path: Path) -> None:
    """``path`` as a new empty folder (what was there removed, no link followed)."""
    if path.is_symlink() or path.is_file() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.mkdir(mode=0o755)


def _static(program: Path) -> bool:
    """Whether ``program`` is an ELF64 file with no program interpreter (runs with no library)."""
    try:
        fd = os.open(program, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.pread(fd, 64, 0)
        return head.startswith(b"\x7fELF") and len(head) == 64 and not has_interpreter(fd, head)
    finally:
        os.close(fd)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class QemuContainer:
    """An image of ``platform`` unpacked under ``cache_dir``, ready to run commands through qemu-user.

    ``with QemuContainer(store, digest, ARM64, cache) as box: box.run(["busybox", "echo", "hi"])``;
    An image of the host's own platform runs the same way with nothing emulated (a chroot of its
    programs as they are: the base image's Python compiling byte-code, ``compiler.backends.oci.base_python``).
    ``box.start(port)`` starts Entrypoint+Cmd in the background, ``box.stop_all()`` (or leaving the
    ``with``) stops what was started and removes the root filesystem."""

    def __init__(self, store: OciStore | None, manifest_digest: str | None, platform: Platform, cache_dir: Path,
                 image: PlatformImage | None = None, limits: RootfsLimits = RootfsLimits(),
                 qemu_dir: Path = QEMU_DIR, network: bool = True, kept: bool = False):  # fmt: skip
        self.platform, self.cache_dir, self.limits, self.network = platform, cache_dir, limits, network
        self.kept = kept  # the root filesystem kept in the cache for the next run (compiler.runtime.kept_root)
        self._store, self._digest, self._image = store, manifest_digest, image
        self.qemu = qemu_dir / platform.qemu
        self.root: Path | None = None
        self.stats: RootfsStats | None = None
        self.config: dict = {}
        self.name = image.name if image else str(manifest_digest)
        self._folder = None
        self.wrapped = 0  # programs wrapped to run under qemu-user
        self._started: list[QemuProcess] = []

    @property
    def foreign(self) -> bool:
        """Whether the image's programs run under qemu-user (the host's own platform's run as they are)."""
        return self.platform != Platform.host()

    @classmethod
    def for_image(cls, image: PlatformImage, cache_dir: Path, **kwargs) -> "QemuContainer":
        """A container of an image already opened (from the store or an ``oci:`` layout)."""
        return cls(None, None, image.platform, cache_dir, image=image, **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------
    def check_host(self) -> None:
        if os.geteuid() != 0:
            raise QemuUnavailable(f"running a {self.platform} image on this host needs root (chroot and mounts "
                                  f"under qemu-user); run pkgc as root, or verify on a {self.platform} machine")  # fmt: skip
        if self.foreign and not self.qemu.is_file():
            raise QemuUnavailable(f"{self.qemu} not found: install Debian's qemu-user-static (scripts/setup.sh does)")
        if self.foreign and not _static(BUSYBOX):
            raise QemuUnavailable(f"{BUSYBOX} is not a static program: install Debian's busybox-static (scripts/setup.sh does)")
        if shutil.which("unshare") is None or shutil.which("mount") is None:
            raise QemuUnavailable("unshare and mount (util-linux) are needed to run an image under qemu-user")

    def __enter__(self) -> "QemuContainer":
        self.check_host()
        image = self._image or open_stored(self._store, self._digest, self.platform)  # type: ignore[arg-type]
        try:
            self.config = mapping(image.config.get("config"))
            if self.kept:
                key = f"{self.platform.architecture}-{image.digest.split(':', 1)[-1][:64]}"
                self.root = kept_root(self.cache_dir, key, lambda root: self._prepare(image, root))
                return self
            self._folder = rootfs_folder(self.cache_dir)
            self.root = self._folder.__enter__()
            try:
                self._prepare(image, self.root)
            except BaseException:
                self._folder.__exit__(None, None, None)
                raise
        finally:
            if self._image is None:
                image.close()
        return self

    def _prepare(self, image: PlatformImage, root: Path) -> None:
        """Unpack ``image`` below ``root``; for another platform, its launchers and wrapped programs."""
        self.stats = unpack_rootfs(image, root, self.limits)
        for folder in (root / "proc", root / "dev", launcher_dir(root)):
            _empty_folder(folder)  # pkgc's own, whatever the image put there (a link, a file)
        for program in (self.qemu, BUSYBOX) if self.foreign else ():
            copied = launcher_dir(root) / program.name
            with open(program, "rb") as source, open(copied, "xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
            os.chmod(copied, 0o755)
        self.wrapped = wrap_programs(root, self.platform) if self.foreign else 0

    def __exit__(self, *_exc) -> None:
        self.stop_all()
        if self._folder is not None:
            self._folder.__exit__(None, None, None)
            self._folder = None

    def stop_all(self) -> None:
        while self._started:
            self._started.pop().stop()

    # -- commands ----------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The image's Entrypoint + Cmd."""
        entry, cmd = self.config.get("Entrypoint"), self.config.get("Cmd")
        argv = [str(a) for a in (entry if isinstance(entry, list) else [])] + [str(a) for a in (cmd if isinstance(cmd, list) else [])]
        if not argv:
            raise ResolveError(f"image '{excerpt(self.name)}' states no Entrypoint or Cmd to run")
        return argv

    def user(self, name: str | None = None) -> ProcessUser:
        """``name`` (default: the config's User) as ids, looked up in the image's own account files."""
        root = self._root()
        wanted = str(self.config.get("User") or "") if name is None else name
        return process_user(wanted, read_file(root, "/etc/passwd", ACCOUNTS_LIMIT), read_file(root, "/etc/group", ACCOUNTS_LIMIT),
                            self.name)  # fmt: skip

    def read_file(self, path: str, limit: int) -> bytes | None:
        return read_file(self._root(), path, limit)

    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("QemuContainer used outside its 'with'")
        return self.root

    def _argv(self, argv: list[str], env: dict[str, str], mounts: list[Mount], user_name: str | None) -> list[str]:
        root, user = self._root(), self.user(user_name)
        workdir = str(self.config.get("WorkingDir") or "/")
        make_folder(root, workdir)
        points = []
        for mount in mounts:
            if not mount.source.exists():
                raise ResolveError(f"{excerpt(str(mount.source))} (to mount at {excerpt(mount.target)}) does not exist")
            point = make_folder(root, mount.target) if mount.source.is_dir() else self._file_point(mount.target)
            points.append([str(mount.source.resolve()), str(point), mount.read_only])
        spec = {"root": str(root), "argv": argv, "cwd": workdir,
                "env": process_env(self.config.get("Env"), user, env), "uid": user.uid, "gid": user.gid,
                "groups": list(user.groups), "mounts": points}  # fmt: skip
        isolated = () if self.network else ("--net",)  # network=False: a namespace with no interface up
        return [*UNSHARE, *isolated, sys.executable, "-I", "-S", str(SHIM), json.dumps(spec)]

    def _file_point(self, target: str) -> Path:
        parent, _, name = target.rstrip("/").rpartition("/")
        point = make_folder(self._root(), parent or "/") / name
        if not point.exists():
            point.touch()
        return point

    def run(self, argv: list[str] | None = None, env: dict[str, str] | None = None, timeout: float = 300.0,
            mounts: list[Mount] | None = None, user: str | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        """Run ``argv`` (default: Entrypoint+Cmd) to its end as ``user`` (default: the config's); its
        output captured. On ``timeout`` every process it started is killed and TimeoutExpired raised."""
        args = self._argv(argv or self.command(), env or {}, mounts or [], user)
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True, env=_host_env())  # fmt: skip
        try:
            out, err = popen.communicate(timeout=timeout)
        except BaseException:
            QemuProcess(popen, Path(os.devnull), None).stop()
            raise
        return subprocess.CompletedProcess(argv or self.command(), popen.returncode, out, err)

    def start(self, port: int | None = None, argv: list[str] | None = None, env: dict[str, str] | None = None,
              mounts: list[Mount] | None = None, ports: tuple[int, ...] = (), user: str | None = None) -> QemuProcess:  # fmt: skip
        """Start ``argv`` (default: Entrypoint+Cmd, the image's server) in the background. The chroot
        shares the host's network: the server binds ``port`` (and ``ports``) on this host itself, so
        they must be free (ResolveError, exit 2, otherwise)."""
        wanted = tuple(dict.fromkeys(([port] if port else []) + list(ports)))
        taken = [p for p in wanted if not _port_free(p)]
        if taken:
            raise ResolveError(f"port {taken[0]} is in use on this host; the image's server under qemu binds it "
                               "directly (no engine maps ports): stop what uses it")  # fmt: skip
        args = self._argv(argv or self.command(), env or {}, mounts or [], user)
        log = self._root().parent / f"log-{len(self._started)}"
        with open(log, "wb") as sink:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=_host_env())  # fmt: skip
        process = QemuProcess(popen, log, port)
        self._started.append(process)
        return process


def _host_env() -> dict[str, str]:
    """What unshare and the shim need of the host's environment (the image's own goes in the spec)."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}


def wait_for_port(process: QemuProcess, port: int, timeout: float) -> float:
    """Seconds until something accepts connections on 127.0.0.1:``port``; TimeoutError or
    ChildProcessError (the command ended first, with its output)."""
    started = time.monotonic()
    while True:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return time.monotonic() - started
        if not process.running():
            raise ChildProcessError(f"exited with {process.exit_code()} before port {port} answered: {process.output()[-400:]}")
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"port {port} did not answer within {timeout:.0f} s")
        time.sleep(0.2)
