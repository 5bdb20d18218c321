"""What an image config's ``User``, ``Env`` and ``WorkingDir`` mean for a process started in its root
filesystem: uid, gid and groups (names looked up in the image's own /etc/passwd and /etc/group, read
bounded, links resolved inside the root), the environment (PATH and HOME as engines default them)."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import ResolveError, excerpt

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default
ACCOUNTS_LIMIT = 4 << 20


@dataclass(frozen=True)
class ProcessUser:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _table(text: bytes | None) -> list[list[str]]:
    lines = (text or b"").decode("utf-8", "replace").splitlines()
    return [line.split(":") for line in lines if line and not line.startswith("#")]


def process_user(user: str, passwd: bytes | None, group: bytes | None, image: str) -> ProcessUser:
    """``""``, ``uid``, ``uid:gid``, ``name``, ``name:group`` -> ids; a name the image does not know is
    bad input (exit 2), as it is for ``docker run``."""
    name, _, group_name = (user or "0").partition(":")
    users, groups = _table(passwd), _table(group)

    def unknown(what: str, value: str) -> ResolveError:
        return ResolveError(f"image '{excerpt(image)}': User {excerpt(user, 60)!r}: no {what} {excerpt(value, 60)!r} in its /etc/{'passwd' if what == 'user' else 'group'}")

    row = next((r for r in users if len(r) >= 4 and (r[0] == name or r[2] == name)), None)
    if name.isdigit():
        uid = int(name)
    elif row is not None and row[2].isdigit():
        uid = int(row[2])
    else:
        raise unknown("user", name)
    gid = int(row[3]) if row is not None and row[3].isdigit() else 0 if not group_name else -1
    if group_name:
        if group_name.isdigit():
            gid = int(group_name)
        else:
            found = next((g for g in groups if len(g) >= 3 and g[0] == group_name and g[2].isdigit()), None)
            if found is None:
                raise unknown("group", group_name)
            gid = int(found[2])
    account = row[0] if row is not None else None
    extra = sorted({int(g[2]) for g in groups if len(g) >= 4 and g[2].isdigit() and account and account in g[3].split(",")})
    home = row[5] if row is not None and len(row) >= 6 and row[5] else "/"
    return ProcessUser(uid, gid, tuple(dict.fromkeys([gid, *extra])), home if uid != 0 or row else "/root")


def process_env(config_env: object, user: ProcessUser, extra: dict[str, str]) -> dict[str, str]:
    """The image's ``Env`` (``KEY=value`` strings), PATH and HOME defaulted, then ``extra``."""
    env: dict[str, str] = {}
    for item in config_env if isinstance(config_env, list) else []:
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", user.home)
    env.update(extra)
    return env
