"""pkgc's registry client finds a runner's login where docker, podman and skopeo put it
(compiler.oci.credentials): the order of the files, the three ways a file holds a login, real
credential helpers (executables on PATH speaking the docker-credential protocol), the lookup made
only on a 401, and hostile files and helpers as one line that never holds a secret. The real
registry asking for a login is tests/e2e/test_registry_cache.py."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from compiler.oci.credentials import CredentialsError, RegistryLogin, auth_files, find_credentials

HOST = "registry.example.com:5000"
SECRET = "pa:ss-w0rd"  # a colon in a password: only the first one splits


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "PATH": str(tmp_path / "bin") + ":/usr/bin:/bin", **extra}


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def _helper(tmp_path: Path, name: str, body: str) -> Path:
    """A real ``docker-credential-<name>`` on the test's PATH; it logs each call to ``calls``."""
    path = tmp_path / "bin" / f"docker-credential-{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nread server\necho \"$1 $server\" >> {tmp_path / 'calls'}\n{body}\n")
    path.chmod(0o755)
    return path


def test_the_files_containers_tools_and_docker_read_in_their_order(tmp_path):
    env = _env(tmp_path, REGISTRY_AUTH_FILE=str(tmp_path / "a.json"), XDG_RUNTIME_DIR=str(tmp_path / "run"),
               DOCKER_CONFIG=str(tmp_path / "dc"))  # fmt: skip
    assert auth_files(env) == [tmp_path / "a.json", tmp_path / "run/containers/auth.json",
                               tmp_path / "home/.config/containers/auth.json", tmp_path / "dc/config.json"]  # fmt: skip
    _write(tmp_path / "dc/config.json", {"auths": {HOST: {"auth": _auth("docker", SECRET)}}})
    assert find_credentials(HOST, env) == ("docker", SECRET)
    _write(tmp_path / "home/.config/containers/auth.json", {"auths": {HOST: {"auth": _auth("podman", SECRET)}}})
    assert find_credentials(HOST, env) == ("podman", SECRET)
    _write(tmp_path / "a.json", {"auths": {"other.example.com": {"auth": _auth("x", "y")}}})  # names another registry
    assert find_credentials(HOST, env) == ("podman", SECRET)
    assert find_credentials(HOST, {**env, "PKGC_REGISTRY_USERNAME": "env", "PKGC_REGISTRY_PASSWORD": "p"}) == ("env", "p")
    assert find_credentials("nobody.example.com", env) is None


@pytest.mark.parametrize("key", [HOST, f"https://{HOST}", f"http://{HOST}/v1/", HOST.upper()])
def test_an_auths_key_names_its_registry_however_it_is_spelled(tmp_path, key):
    env = _env(tmp_path)
    _write(tmp_path / "home/.docker/config.json", {"auths": {key: {"username": "u", "password": SECRET}}})
    assert find_credentials(HOST, env) == ("u", SECRET)


def test_docker_hubs_names_are_one_registry(tmp_path):
    env = _env(tmp_path)
    _write(tmp_path / "home/.docker/config.json", {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", SECRET)}}})
    assert find_credentials("docker.io", env) == ("hub", SECRET)
    assert find_credentials("registry-1.docker.io", env) == ("hub", SECRET)


def test_a_credential_helper_is_asked_for_its_registry_only_on_first_use(tmp_path):
    env = _env(tmp_path)
    _helper(tmp_path, "pkgctest", f"echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"helped\",\"Secret\":\"{SECRET}\"}}'")
    _write(tmp_path / "home/.docker/config.json", {"credHelpers": {HOST: "pkgctest"}, "auths": {HOST: {"auth": _auth("no", "no")}}})
    login = RegistryLogin(HOST, env)
    assert not (tmp_path / "calls").exists()  # nothing asked before a registry wants it
    assert login.get() == ("helped", SECRET) and login.get() == ("helped", SECRET)
    assert (tmp_path / "calls").read_text() == f"get {HOST}\n"  # once, with the registry on stdin
    assert SECRET not in repr(login)


def test_a_creds_store_is_asked_when_no_entry_names_the_registry(tmp_path):
    env = _env(tmp_path)
    _helper(tmp_path, "store", f"echo '{{\"Username\":\"stored\",\"Secret\":\"{SECRET}\"}}'")
    _write(tmp_path / "home/.docker/config.json", {"credsStore": "store", "auths": {HOST: {}}})  # docker login's empty entry
    assert find_credentials(HOST, env) == ("stored", SECRET)


def test_a_helper_without_credentials_for_the_registry_gives_none(tmp_path):
    env = _env(tmp_path)
    _helper(tmp_path, "empty", "echo 'credentials not found in native keychain'; exit 1")
    _write(tmp_path / "home/.docker/config.json", {"credsStore": "empty"})
    assert find_credentials(HOST, env) is None


@pytest.mark.parametrize(
    "document, expected",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ({"auths": [1]}, "auths is not an object"),
        ({"auths": {HOST: "x"}}, "is not an object"),
        ({"auths": {HOST: {"auth": "%%%"}}}, "is not base64"),
        ({"auths": {HOST: {"auth": base64.b64encode(b"no-colon").decode()}}}, "is not base64"),
        ({"auths": {HOST: {"auth": _auth("00000000-0000-0000-0000-000000000000", ""), "identitytoken": "tok"}}}, "identity token"),
        ({"credHelpers": {HOST: "../../bin/sh"}}, "not a credential helper's name"),
        ({"credHelpers": {HOST: "absent"}}, "not on PATH"),
        ({"credsStore": "x y"}, "not a credential helper's name"),
    ],
)
def test_a_hostile_or_broken_file_is_one_line_naming_it(tmp_path, document, expected):
    env = _env(tmp_path)
    path = _write(tmp_path / "home/.docker/config.json", document)
    with pytest.raises(CredentialsError, match=expected) as raised:
        find_credentials(HOST, env)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message and "tok" not in message.replace("token", "")


@pytest.mark.parametrize(
    "body, expected",
    [
        ("echo 'not json'", "no Username and Secret"),
        ("echo 'denied' >&2; exit 3", "exited 3"),
        ("echo '{\"Username\":\"<token>\",\"Secret\":\"" + SECRET + "\"}'", "identity token"),
    ],
)
def test_a_helper_that_misbehaves_is_one_line_without_its_secret(tmp_path, body, expected):
    env = _env(tmp_path)
    _helper(tmp_path, "bad", body)
    _write(tmp_path / "home/.docker/config.json", {"credHelpers": {HOST: "bad"}})
    with pytest.raises(CredentialsError, match=expected) as raised:
        find_credentials(HOST, env)
    assert SECRET not in str(raised.value) and "docker-credential-bad" in str(raised.value)


def test_an_auth_file_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path):
    env = _env(tmp_path)
    config = tmp_path / "home/.docker/config.json"
    config.parent.mkdir(parents=True)
    os.mkfifo(config)  # a FIFO would block a plain open() forever
    with pytest.raises(CredentialsError, match="cannot read it"):
        find_credentials(HOST, env)
    config.unlink()
    config.write_bytes(b" " * ((1 << 20) + 1))
    with pytest.raises(CredentialsError, match="more than"):
        find_credentials(HOST, env)


def test_a_helper_that_floods_or_hangs_is_stopped(tmp_path, monkeypatch):
    from compiler.oci import credentials

    env = _env(tmp_path)
    _write(tmp_path / "home/.docker/config.json", {"credHelpers": {HOST: "flood", "hang.example.com": "hang"}})
    _helper(tmp_path, "flood", "exec yes")
    with pytest.raises(CredentialsError, match="answered more than"):
        find_credentials(HOST, env)
    _helper(tmp_path, "hang", "exec sleep 60")
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT", 1.0)
    started = time.monotonic()
    with pytest.raises(CredentialsError, match="TimeoutExpired"):
        find_credentials("hang.example.com", env)
    assert time.monotonic() - started < 10
