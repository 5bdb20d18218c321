"""Source parser: a conda environment file (``name``, ``channels``, ``dependencies`` with ``pip:``).

A file without ``channels:`` gets no channels here: as conda reads it, it means the configured default
channels, which the merge supplies (``conda_default_channels`` in pkgc.toml, else ``defaults``)."""

from __future__ import annotations

import re
from pathlib import Path

from compiler.deps.specs import RequirementSyntaxError, parse_conda, parse_pip
from compiler.deps.types import DepSet, Requirement, Source
from compiler.errors import Collected, excerpt
from compiler.spec.yamldoc import YamlDocument, load_yaml

ALLOWED_KEYS = {"name", "channels", "dependencies", "prefix", "variables"}
CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+~%-]{0,255}$")  # a channel name or URL: no spaces, no controls


def parse_conda_document(doc: YamlDocument, source: Source) -> DepSet:
    """Turn a loaded conda file into a DepSet; every problem names the file, key and line."""
    problems = Collected()
    data = doc.data
    if not isinstance(data, dict):
        problems.problems.append(doc.problem((), "a conda file must be a YAML mapping"))
        problems.raise_if_any()
    for key in data:
        if key not in ALLOWED_KEYS:
            problems.problems.append(doc.problem((key,), "unknown key in conda file"))
    channels = data.get("channels") or []
    if not isinstance(channels, list):
        problems.problems.append(doc.problem(("channels",), "must be a list of channel names"))
        channels = []
    for index, channel in enumerate(channels):
        if not (isinstance(channel, str) and CHANNEL.match(channel)):
            problems.problems.append(doc.problem(("channels", index), f"'{excerpt(str(channel))}' is not a conda channel name or URL"))
    channels = [c for c in channels if isinstance(c, str) and CHANNEL.match(c)]
    deps = data.get("dependencies") or []
    requirements: list[Requirement] = []
    if not isinstance(deps, list):
        problems.problems.append(doc.problem(("dependencies",), "must be a list"))
        deps = []
    for index, item in enumerate(deps):
        key = ("dependencies", index)
        try:
            if isinstance(item, dict) and set(item) == {"pip"} and isinstance(item["pip"], list):
                for pindex, line in enumerate(item["pip"]):
                    try:
                        requirements.append(parse_pip(str(line), source))
                    except RequirementSyntaxError as exc:
                        problems.problems.append(doc.problem(key + ("pip", pindex), str(exc)))
            elif isinstance(item, (str, int, float)):
                requirements.append(parse_conda(str(item), source))
            else:
                problems.problems.append(doc.problem(key, "must be a conda spec string or a 'pip:' list"))
        except RequirementSyntaxError as exc:
            problems.problems.append(doc.problem(key, str(exc)))
    problems.raise_if_any()
    return DepSet(source=source, requirements=tuple(requirements), channels=tuple(channels))


def load_conda_file(path: Path, label: str) -> tuple[DepSet, YamlDocument]:
    """The parsed conda file and its document (for messages naming a key's line)."""
    doc = load_yaml(path, "conda file")
    return parse_conda_document(doc, Source("conda_file", label, str(path))), doc


def parse_conda_file(path: Path, label: str) -> DepSet:
    """Load and parse the conda file at ``path``; ``label`` says whose file it is, for messages."""
    return load_conda_file(path, label)[0]
