"""A conda file without ``channels:`` is solved against the configured default channels (issue 17.6),
through the real merge, strategy and rattler solve, against a local channel built by the test; an
MLflow model's conda.yaml can only add channels the user configured (issue 16.7)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compiler.deps.conda_file import parse_conda_file
from compiler.deps.merge import merge
from compiler.environment.strategy import choose_strategy
from compiler.errors import LockError
from compiler.lock.conda_resolve import resolve_conda
from compiler.options import load_options
from compiler.resolve.types import BaseImageFacts
from tests.e2e.conda_channel import build_channel, demo_packages

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
FACTS = BaseImageFacts("pkgc/base-debian-bookworm:latest", PYTHON, False, "recipe")


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    return build_channel(tmp_path_factory.mktemp("conda") / "channel", demo_packages())


def test_no_channels_solves_against_the_configured_default(channel, tmp_path):
    (tmp_path / "conda.yaml").write_text(f"dependencies:\n  - python={PYTHON}\n  - pip\n  - pkgc-demo=1\n")
    (tmp_path / "pkgc.toml").write_text(f'conda_default_channels = ["{channel.url}"]\n')
    options = load_options(config_dir=tmp_path, environ={})
    merged = merge([parse_conda_file(tmp_path / "conda.yaml", "c")], options.conda_default_channels)
    strategy = choose_strategy(merged, FACTS, conda_available=True)
    assert strategy.kind == "conda" and strategy.channels == (channel.url,)
    locked = {p.name: p.version for p in resolve_conda(strategy)}
    assert locked["pkgc-demo"] == "1.2.0" and locked["pkgc-demo-data"] == "1.0"


def test_a_channel_the_file_names_is_used_as_before(channel, tmp_path):
    (tmp_path / "conda.yaml").write_text(f"channels: ['{channel.url}']\ndependencies:\n  - python={PYTHON}\n  - pkgc-demo=1\n")
    merged = merge([parse_conda_file(tmp_path / "conda.yaml", "c")], ("file:///nonexistent/channel",))
    assert merged.channels == (channel.url,)


def test_an_unreachable_default_is_named_by_the_solver(tmp_path):
    (tmp_path / "conda.yaml").write_text(f"dependencies:\n  - python={PYTHON}\n  - pkgc-demo=1\n")
    merged = merge([parse_conda_file(tmp_path / "conda.yaml", "c")], (f"file://{tmp_path}/none",))
    with pytest.raises(LockError, match=f"cannot fetch conda channel 'file://{tmp_path}/none'"):
        resolve_conda(choose_strategy(merged, FACTS, conda_available=True))
