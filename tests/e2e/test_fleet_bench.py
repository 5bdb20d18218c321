"""A CI-sized run of bench/fleet.py (2 environments x 2 models on 2 runners, one loopback registry): the
fleet builds the same digests with and without the shared cache, and with it uploads each distinct
layer about once (the issue's target: <= 1.1x the distinct layers' bytes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.engine


def test_the_fleet_shares_its_layers_through_the_registry(base_image, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet.py"), "--envs", "2", "--models", "2", "--runners", "2",
                           "--warm-pyc", "--no-solo", "--json", "--work", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout)
    none, shared = figures["none"], figures["shared"]
    assert figures["packages"] == 4 and none["packages"] == shared["packages"] == 4
    assert figures["same_digests"] is True
    assert figures["upload_ratio"] <= 1.1, figures
    assert shared["wire_bytes_up"] < none["wire_bytes_up"]
    assert shared["mounts"] > 0 and shared["client_bytes_downloaded"] == 0  # no engine: nothing fetched
    print(f"\nfleet (CI size): none {none['wall_seconds']} s, {none['wire_bytes_up'] / 1e6:.0f} MB up; shared {shared['wall_seconds']} s, "
          f"{shared['wire_bytes_up'] / 1e6:.0f} MB up; layer bytes uploaded / distinct = {figures['upload_ratio']}; load {os.getloadavg()[0]:.1f}")
