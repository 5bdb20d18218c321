"""A registry's credentials for pkgc's own distribution client, found where ``docker login``,
``podman login`` and ``skopeo login`` put them, so a CI runner that logged in needs nothing more.

Looked up only when a registry answers 401 (``RegistryLogin.get``, once per client): a credential
helper may be slow or ask a network service, and an anonymous registry needs none. In order:

1. ``PKGC_REGISTRY_USERNAME``/``PKGC_REGISTRY_PASSWORD`` (both set): for every registry;
2. the auth files containers tools read, the first naming the registry wins: ``$REGISTRY_AUTH_FILE``,
   ``$XDG_RUNTIME_DIR/containers/auth.json``, ``$XDG_CONFIG_HOME/containers/auth.json`` (default
   ``~/.config``), ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``);
3. in a file: ``credHelpers[registry]``, else the ``auths`` entry (``auth``: base64 ``user:password``,
   or ``username``/``password``), else ``credsStore``: a helper ``docker-credential-<name>`` from
   ``PATH``, asked ``get`` with the registry on its standard input (its protocol), its answer read
   bounded and within a timeout.

The files are input: each is read bounded, from a regular file; a malformed one is one line naming
the file and the key (exit 2). No secret is ever part of a message. An ``identitytoken`` (``az acr
login``, Docker Desktop) needs an OAuth2 exchange pkgc does not make: it is named, not used."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from typing import Mapping

from compiler.errors import PkgcError, excerpt
from compiler.oci.regular import NotRegularFile, open_regular

FILE_LIMIT = 1 << 20  # an auth file
HELPER_LIMIT = 64 << 10  # a helper's answer
HELPER_TIMEOUT = 30.0
HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a name, never a path
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


class CredentialsError(PkgcError):
    """An auth file or a credential helper that cannot be used: bad input, exit 2."""

    exit_code = 2


def auth_files(environ: Mapping[str, str]) -> list[Path]:
    """Where containers tools and Docker keep logins, in the order they read them."""
    home = Path(environ.get("HOME") or Path.home())
    files = []
    if environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(environ["REGISTRY_AUTH_FILE"]))
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    files.append(Path(environ.get("DOCKER_CONFIG") or home / ".docker") / "config.json")
    return files


def _host(key: str) -> str:
    """An ``auths`` key as the registry it names: ``https://host/v1/`` -> ``host``."""
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0].lower()
    return "docker.io" if host in DOCKER_HUB else host


def _read(path: Path) -> dict | None:
    """The auth file's JSON object, or None when there is no such file."""
    try:
        fd, size = open_regular(path)
    except FileNotFoundError:
        return None
    except (OSError, NotRegularFile) as exc:
        raise CredentialsError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(min(size, FILE_LIMIT + 1))
    if len(data) > FILE_LIMIT:
        raise CredentialsError(f"{path}: more than {FILE_LIMIT} bytes, not an auth file")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CredentialsError(f"{path}: not JSON ({excerpt(str(exc), 80)})") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"{path}: not a JSON object")
    return document


def _from_entry(path: Path, key: str, entry: object) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        raise CredentialsError(f"{path}: auths.{excerpt(key, 60)} is not an object")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise CredentialsError(f"{path}: auths.{excerpt(key, 60)}.auth is not base64 of 'user:password'") from None
        if not sep:
            raise CredentialsError(f"{path}: auths.{excerpt(key, 60)}.auth is not base64 of 'user:password'")
    else:
        user, password = entry.get("username"), entry.get("password")
    if entry.get("identitytoken") and not password:
        raise CredentialsError(f"{path}: auths.{excerpt(key, 60)} holds an identity token (az acr login, Docker Desktop), which "
                               "pkgc cannot exchange: log in with a user and password or a credential helper, or set "
                               "PKGC_REGISTRY_USERNAME/PKGC_REGISTRY_PASSWORD")  # fmt: skip
    if isinstance(user, str) and isinstance(password, str) and user and password:
        return user, password
    return None


def _helper(path: Path, key: str, name: object, registry: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Ask ``docker-credential-<name> get`` for ``registry``; None when it has nothing for it."""
    if not isinstance(name, str) or not HELPER_NAME.match(name):
        raise CredentialsError(f"{path}: {key} names '{excerpt(str(name), 60)}', which is not a credential helper's name")
    program = shutil.which(f"docker-credential-{name}", path=environ.get("PATH"))
    if program is None:
        raise CredentialsError(f"{path}: {key} names docker-credential-{name}, which is not on PATH")
    try:
        returncode, out = _ask(program, registry, environ)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
        raise CredentialsError(f"docker-credential-{name} (from {path}) failed: {reason}") from None
    if returncode != 0:
        if b"credentials not found" in out.lower():
            return None
        raise CredentialsError(f"docker-credential-{name} (from {path}) exited {returncode} for {registry}")
    try:
        answer = json.loads(out)
        user, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(f"docker-credential-{name} (from {path}) answered no Username and Secret for {registry}") from None
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return None
    if user == "<token>":
        raise CredentialsError(f"docker-credential-{name} (from {path}) answered an identity token for {registry}, which pkgc "
                               "cannot exchange: set PKGC_REGISTRY_USERNAME/PKGC_REGISTRY_PASSWORD")  # fmt: skip
    return user, secret


def _ask(program: str, registry: str, environ: Mapping[str, str]) -> tuple[int, bytes]:
    """Run ``program get`` with ``registry`` on its standard input: its exit code and its answer, read
    bounded (ValueError past ``HELPER_LIMIT``) within ``HELPER_TIMEOUT`` (TimeoutExpired); its standard
    error is not read (the protocol answers on standard output, errors included)."""
    deadline = time.monotonic() + HELPER_TIMEOUT
    proc = subprocess.Popen([program, "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=dict(environ))  # fmt: skip
    try:
        try:
            proc.stdin.write(registry.encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass  # it answers without reading
        out = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(program, HELPER_TIMEOUT)
                if not selector.select(left):
                    continue
                chunk = os.read(proc.stdout.fileno(), 1 << 16)  # type: ignore[union-attr]
                if not chunk:
                    break
                out += chunk
                if len(out) > HELPER_LIMIT:
                    raise ValueError(f"answered more than {HELPER_LIMIT} bytes")
        return proc.wait(timeout=max(0.1, deadline - time.monotonic())), bytes(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


def _from_file(path: Path, registry: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    document = _read(path)
    if document is None:
        return None
    helpers = document.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise CredentialsError(f"{path}: credHelpers is not an object")
    for key, name in helpers.items():
        if _host(str(key)) == registry:
            return _helper(path, f"credHelpers.{excerpt(str(key), 60)}", name, registry, environ)
    auths = document.get("auths") or {}
    if not isinstance(auths, dict):
        raise CredentialsError(f"{path}: auths is not an object")
    for key, entry in auths.items():
        if _host(str(key)) == registry:
            found = _from_entry(path, str(key), entry)
            if found is not None:
                return found
    if document.get("credsStore"):
        return _helper(path, "credsStore", document["credsStore"], registry, environ)
    return None


def find_credentials(registry: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) for ``registry`` (``host[:port]``), or None: see the module's order."""
    env = os.environ if environ is None else environ
    user, password = env.get("PKGC_REGISTRY_USERNAME"), env.get("PKGC_REGISTRY_PASSWORD")
    if user and password is not None:
        return user, password
    wanted = _host(registry)
    for path in auth_files(env):
        found = _from_file(path, wanted, env)
        if found is not None:
            return found
    return None


class RegistryLogin:
    """A registry's credentials, looked up on first use and kept for the client's life."""

    def __init__(self, registry: str, environ: Mapping[str, str] | None = None):
        self.registry, self._environ = registry, environ
        self._found: tuple[str, str] | None = None
        self._looked = False

    def get(self) -> tuple[str, str] | None:
        if not self._looked:
            self._found, self._looked = find_credentials(self.registry, self._environ), True
        return self._found

    def __repr__(self) -> str:  # never the secret
        return f"RegistryLogin({self.registry!r})"
