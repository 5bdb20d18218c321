"""The config of pkgc's own image (no I/O): the base's, plus pkgc's layers, a non-root user, a
single writable folder for everything pkgc writes, and ``pkgc`` as the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.oci.store import timestamp

UID = 10001
USER = "pkgc"
WORK = "/work"  # HOME, cache, workspace and temporary files: the one folder to mount writable
PREFIX = "/opt/pkgc/venv"


@dataclass(frozen=True)
class ImageLayer:
    """One of pkgc's layers: what it holds, and its blob."""

    kind: str
    why: str
    digest: str
    size: int
    diff_id: str
    media_type: str

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def environment(base_env: list[str]) -> list[str]:
    """The base's variables, the venv first on PATH, and every writable place under ``WORK``."""
    env = dict(item.partition("=")[::2] for item in base_env)
    env["PATH"] = f"{PREFIX}/bin:" + env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update({"HOME": WORK, "XDG_CACHE_HOME": f"{WORK}/.cache", "PKGC_CACHE_DIR": f"{WORK}/.cache/pkgc",
                "PKGC_WORKSPACE": f"{WORK}/workspace", "TMPDIR": WORK, "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    return [f"{key}={value}" for key, value in env.items()]


def image_config(base_config: dict, layers: list[ImageLayer], version: str, epoch: int) -> dict:
    inner = base_config.get("config") or {}
    created = timestamp(epoch)
    labels = {"org.opencontainers.image.title": "pkgc", "org.opencontainers.image.version": version,
              "org.opencontainers.image.description": "pkgc, the model package compiler: builds and pushes with no engine"}  # fmt: skip
    history = list(base_config.get("history") or [])
    history += [{"created": created, "created_by": f"pkgc {version} image: {layer.kind} layer", "comment": layer.why} for layer in layers]
    history.append({"created": created, "created_by": f"pkgc {version} image: ENV, USER, WORKDIR, ENTRYPOINT", "empty_layer": True})
    return {
        "created": created,
        "architecture": base_config.get("architecture"),
        "os": base_config.get("os"),
        "config": {"User": f"{UID}:{UID}", "Env": environment(list(inner.get("Env") or [])), "WorkingDir": WORK,
                   "Entrypoint": [f"{PREFIX}/bin/pkgc"], "Cmd": ["--help"], "Labels": labels},  # fmt: skip
        "rootfs": {"type": "layers", "diff_ids": list(base_config["rootfs"]["diff_ids"]) + [l.diff_id for l in layers]},
        "history": history,
    }


def user_lines(passwd: str, group: str) -> tuple[str, str]:
    """``/etc/passwd`` and ``/etc/group`` with pkgc's user added (home ``WORK``, no login shell)."""

    def add(text: str, name: str, line: str) -> str:
        if any(row.split(":")[0] == name for row in text.splitlines()):
            return text
        return (text if not text or text.endswith("\n") else text + "\n") + line + "\n"

    return (add(passwd, USER, f"{USER}:x:{UID}:{UID}:pkgc:{WORK}:/usr/sbin/nologin"),
            add(group, USER, f"{USER}:x:{UID}:"))  # fmt: skip
