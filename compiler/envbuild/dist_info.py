"""What an installed distribution's ``.dist-info`` folder says about it, read with bounds."""

from __future__ import annotations

from pathlib import Path

METADATA_LIMIT = 65536  # the Name: header is at the top; a hostile METADATA is not read whole


def dist_name(dist_info: Path) -> str:
    """The distribution's name from its METADATA, else from the folder's name (``name-version.dist-info``)."""
    try:
        with open(dist_info / "METADATA", encoding="utf-8", errors="replace") as fh:
            for line in fh.read(METADATA_LIMIT).splitlines():
                if line.lower().startswith("name:"):
                    return line.split(":", 1)[1].strip()
                if not line:
                    break
    except OSError:
        pass
    return dist_info.name.split("-", 1)[0]
