"""uv as the lock stage's resolver: pip's settings translated for uv, uv's pylock read as pip would
install it, and a real resolve agreeing with pip's wheel for wheel."""

from __future__ import annotations

import pytest

from compiler.errors import LockError

from compiler.lock.pip_resolve import resolve_pip
from compiler.lock.uv_resolve import (
    PipSettings,
    UvUnavailable,
    best_wheel,
    packages_from_pylock,
    resolve_with_uv,
    target_tags,
    uv_platform,
)

LISTING = """\
global.cert='/etc/ssl/certs/corp.pem'
global.index-url='https://mirror.example/simple'
global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'
global.constraint='/etc/pip/constraints.txt'
install.trusted-host='mirror.example'
:env:.index-url='https://env.example/simple'
:env:.find-links='/opt/wheels'
"""


def test_pip_settings_become_uv_settings_with_pip_precedence():
    settings = PipSettings.parse(LISTING)
    env = settings.uv_env({})
    assert env["UV_INDEX_URL"] == "https://env.example/simple"  # PIP_INDEX_URL wins over the file, as in pip
    assert env["UV_EXTRA_INDEX_URL"] == "file:///opt/a/simple file:///opt/b/simple"
    assert env["UV_FIND_LINKS"] == "/opt/wheels" and env["UV_INSECURE_HOST"] == "mirror.example"
    assert env["UV_CONSTRAINT"] == "/etc/pip/constraints.txt"
    assert settings.uv_args() == []  # places (which may hold credentials) never go on the command line


def test_pip_ca_and_proxy_reach_uv_process_only_and_uv_settings_are_dropped():
    settings = PipSettings.parse(LISTING + "global.proxy='http://proxy:3128'\n")
    env = settings.uv_env({"PATH": "/bin", "UV_INDEX_URL": "https://elsewhere", "UV_CACHE_DIR": "/c", "UV_OFFLINE": "1"})
    assert env == {"PATH": "/bin", "UV_CACHE_DIR": "/c", "SSL_CERT_FILE": "/etc/ssl/certs/corp.pem",
                   "HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://proxy:3128", **PipSettings.parse(LISTING).uv_env({})}  # fmt: skip
    assert env["UV_INDEX_URL"] == "https://env.example/simple"  # pip's, not the user's UV_INDEX_URL
    assert "--native-tls" not in settings.uv_args()
    assert "--native-tls" in PipSettings.parse("").uv_args()  # no CA of pip's: the system store
    assert PipSettings.parse(":env:.no-index='true'\n").uv_args()[-2:] == ["--no-index", "--native-tls"]


def test_platform_beyond_uv_is_left_to_pip():
    assert uv_platform(28) == "x86_64-manylinux_2_28"
    with pytest.raises(UvUnavailable, match="glibc 2.41"):
        uv_platform(41)


def test_best_wheel_is_the_one_pip_ranks_first():
    ranks = {tag: i for i, tag in enumerate(target_tags("3.11", 28))}
    base = "https://files.example/cryptography-50.0.2-"
    urls = [base + "cp39-abi3-manylinux_2_28_x86_64.whl", base + "cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            base + "cp311-abi3-manylinux_2_28_x86_64.whl", "https://files.example/cryptography-50.0.2.tar.gz"]  # fmt: skip
    assert best_wheel(urls, ranks) == base + "cp311-abi3-manylinux_2_28_x86_64.whl"
    binary = "https://f/wrapt-1.16.0-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64.whl"
    assert best_wheel(["https://f/wrapt-1.16.0-py3-none-any.whl", binary], ranks) == binary
    assert best_wheel(["https://f/x-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"], ranks) is None
    assert best_wheel(["https://f/x-1.0-cp311-cp311-manylinux_2_34_x86_64.whl"], ranks) is None  # newer glibc


PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
[[packages]]
name = "wrapt"
version = "1.16.0"
wheels = [
  { url = "https://f/wrapt-1.16.0-py3-none-any.whl", hashes = { sha256 = "aa" } },
  { url = "https://f/wrapt-1.16.0-cp311-cp311-manylinux_2_17_x86_64.whl", hashes = { sha256 = "bb" } },
]
[[packages]]
name = "annotated-types"
version = "0.8.0"
wheels = [{ path = "wheels/annotated_types-0.8.0-py3-none-any.whl", hashes = { sha256 = "cc" } }]
"""


def test_pylock_becomes_locked_packages_with_one_hashed_wheel_each(tmp_path):
    locked = packages_from_pylock(PYLOCK, "3.11", 28, tmp_path)
    assert [(p.name, p.version, p.filename, p.sha256, p.manager) for p in locked] == [
        ("annotated-types", "0.8.0", "annotated_types-0.8.0-py3-none-any.whl", "cc", "pip"),
        ("wrapt", "1.16.0", "wrapt-1.16.0-cp311-cp311-manylinux_2_17_x86_64.whl", "bb", "pip"),
    ]
    assert locked[0].url == (tmp_path / "wheels" / "annotated_types-0.8.0-py3-none-any.whl").as_uri()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('wheels = [{ url = "https://f/x-1.0-py3-none-any.whl" }]', "no sha256 for x-1.0-py3-none-any.whl"),
        ('sdist = { url = "https://f/x-1.0.tar.gz", hashes = { sha256 = "aa" } }', "no wheel of x 1.0"),
        ('archive = { url = "https://f/x.tar.gz", hashes = { sha256 = "aa" } }', "no wheel of x 1.0"),
    ],
)
def test_what_uv_cannot_lock_as_pip_would_is_left_to_pip(tmp_path, entry, message):
    with pytest.raises(UvUnavailable, match=message):
        packages_from_pylock(f'[[packages]]\nname = "x"\nversion = "1.0"\n{entry}\n', "3.11", 28, tmp_path)


def test_a_source_only_package_is_one_line_for_the_fallback():
    """uv needs wheels; pip may build a pure-Python one from the sdist (docopt): left to pip, in one line."""
    with pytest.raises(UvUnavailable) as info:
        resolve_with_uv(["docopt==0.6.2"], "3.11", 28)
    assert str(info.value).startswith("uv pip compile failed: ") and "no usable wheels" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("requirements, said", [
    (["pkgc-no-such-package-anywhere==1.0"], "pkgc-no-such-package-anywhere was not found in the package registry"),
    (["numpy==2.4.6", "numpy<2"], "you require numpy==2.4.6 and numpy<2"),
])  # fmt: skip
def test_what_uv_proves_unsatisfiable_is_one_line_with_no_pip_retry(monkeypatch, requirements, said):
    """A conflict or an unknown name: uv's own reason, at once; pip would take a minute to say less."""
    import compiler.lock.pip_resolve as pip_resolve

    monkeypatch.setattr(pip_resolve, "_resolve_with_pip", lambda *a, **k: pytest.fail("pip must not run"))
    with pytest.raises(LockError) as info:
        resolve_pip(requirements, "3.11")
    message = str(info.value)
    assert said in message and "\n" not in message and len(message) < 500, message
    assert message.startswith("the pip requirements cannot be resolved for Python 3.11")


def test_uv_and_pip_lock_the_same_wheels(monkeypatch):
    """The real thing: uv with the host's pip settings, then pip alone, on the same requirements."""
    requirements = ["pandas==3.1.1", "pyyaml"]
    with_uv = resolve_with_uv(requirements, "3.11", 36)
    monkeypatch.setenv("PKGC_RESOLVER", "pip")
    with_pip = resolve_pip(requirements, "3.11", glibc="2.36")
    assert [(p.version, p.filename, p.sha256) for p in with_uv] == [(p.version, p.filename, p.sha256) for p in with_pip]
