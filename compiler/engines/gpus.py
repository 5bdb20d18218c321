"""GPUs for a container: ``--gpus all|N|device=ID[,ID...]`` (Docker's spelling) parsed once, then
translated per engine.

- Docker: one ``DeviceRequest`` with the ``gpu`` capability, as ``docker run --gpus`` sends it (the
  NVIDIA container toolkit on the engine's host mounts the driver and the devices).
- Podman: CDI device names, ``nvidia.com/gpu=all`` or ``nvidia.com/gpu=INDEX``, as ``podman run --device``
  takes them (the toolkit's CDI spec, ``nvidia-ctk cdi generate``, names the devices). CDI has no count:
  ``N`` means the first N devices (0..N-1). Through podman's Docker API they go as a ``cdi`` device
  request, as Docker's own CLI sends CDI devices.

An engine that answers but drops the request (podman 4.3's Docker API keeps no device request) would
start the package on the CPU without a word; ``dropped_message`` is the one line that says so instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler.errors import SpecError, SpecProblem, excerpt

ALL = -1
MAX_COUNT = 64
CDI_KIND = "nvidia.com/gpu"
DEVICE_ID = re.compile(r"^([0-9]{1,2}|(GPU|MIG)-[A-Za-z0-9-]{1,80})$")  # an index, a GPU or MIG UUID
FORMS = "all, a number of GPUs (1-64) or device=ID[,ID...] (indices or GPU-/MIG- UUIDs)"
NO_GPU_SUPPORT = ("could not select device driver", "nvidia-container-cli", "unresolvable CDI devices", "no CDI devices")


@dataclass(frozen=True)
class GpuRequest:
    """Which GPUs a container gets: ``count`` (ALL for every one) or the named ``device_ids``."""

    count: int = 0
    device_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.device_ids:
            return "device=" + ",".join(self.device_ids)
        return "all" if self.count == ALL else str(self.count)

    def device_request(self, engine: str) -> dict:
        """The Docker API's ``HostConfig.DeviceRequests`` entry for ``engine`` ("docker" or "podman"):
        what ``docker run --gpus`` sends, or podman's CDI names with the ``cdi`` driver."""
        if engine == "podman":
            return {"Driver": "cdi", "Count": 0, "DeviceIDs": list(self.cdi_devices()), "Capabilities": []}
        return {"Driver": "", "Count": 0 if self.device_ids else self.count, "DeviceIDs": list(self.device_ids),
                "Capabilities": [["gpu"]]}  # fmt: skip

    def cdi_devices(self) -> tuple[str, ...]:
        """CDI names for podman (``nvidia.com/gpu=all``, ``nvidia.com/gpu=0``, ...)."""
        if self.count == ALL:
            return (f"{CDI_KIND}=all",)
        ids = self.device_ids or tuple(str(index) for index in range(self.count))
        return tuple(f"{CDI_KIND}={device}" for device in ids)

    def docker_arguments(self) -> list[str]:
        """``docker run`` flags (a list of devices quoted, as Docker's CSV parser wants)."""
        return ["--gpus", f'"{self}"' if self.device_ids else str(self)]

    def podman_arguments(self) -> list[str]:
        """``podman run`` flags."""
        return [arg for name in self.cdi_devices() for arg in ("--device", name)]


def parse_gpus(text: str | None, flag: str = "--gpus") -> GpuRequest | None:
    """``all``, ``N`` or ``device=ID[,ID...]`` (optionally in double quotes, as Docker writes a list);
    None for no flag. Anything else is bad input: one line naming the flag (exit 2)."""
    if text is None:
        return None
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if value == "all":
        return GpuRequest(count=ALL)
    if value.isascii() and value.isdigit():
        if not 1 <= int(value) <= MAX_COUNT:
            raise SpecError(SpecProblem(flag, "", f"'{excerpt(text, 40)}': the number of GPUs must be from 1 to {MAX_COUNT}"))
        return GpuRequest(count=int(value))
    key, sep, ids = value.partition("=")
    if sep and key == "device":
        devices = tuple(ids.split(","))
        bad = next((d for d in devices if not DEVICE_ID.match(d)), None)
        if bad is None and len(set(devices)) == len(devices) and len(devices) <= MAX_COUNT:
            return GpuRequest(device_ids=devices)
        why = f"'{excerpt(bad, 40)}' is not a device index or UUID" if bad is not None else "a device is named twice"
        raise SpecError(SpecProblem(flag, "", f"'{excerpt(text, 40)}': {why}"))
    raise SpecError(SpecProblem(flag, "", f"'{excerpt(text, 40)}' is not {FORMS}"))


def no_gpu_support(engine_text: str) -> bool:
    """Whether an engine's refusal means its host cannot give GPUs (no driver, toolkit or CDI spec)."""
    return any(marker in engine_text for marker in NO_GPU_SUPPORT)


def no_gpu_message(engine: str, gpus: GpuRequest, engine_text: str) -> str:
    return (f"{engine} cannot give the container GPUs ({gpus}): its host has no NVIDIA driver with the "
            f"nvidia-container-toolkit (engine: {excerpt(engine_text.strip(), 120)})")  # fmt: skip


def dropped_message(engine: str, gpus: GpuRequest, image: str) -> str:
    """An engine that accepted the container but kept no device request: name the command that works."""
    flags = gpus.podman_arguments() if engine == "podman" else gpus.docker_arguments()
    return (f"the {engine} engine dropped the GPU request ({gpus}), so the package would run without GPUs; "
            f"run it with the engine's own CLI: {engine} run {' '.join(flags)} ... {excerpt(image)}")  # fmt: skip
