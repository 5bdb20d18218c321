"""Read a saved image (``docker save``): every file of every layer, the config and the history."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Iterator

from compiler.engines import DockerEngine


@dataclass(frozen=True)
class SavedImage:
    config: dict
    layers: list[bytes]  # each layer's tar

    def files(self) -> Iterator[tuple[str, bytes]]:
        for layer in self.layers:
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name, tar.extractfile(member).read()

    def metadata_text(self) -> str:
        return json.dumps(self.config)


def save_image(engine: DockerEngine, ref: str) -> SavedImage:
    data = b"".join(engine.save(ref))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        layers = [tar.extractfile(name).read() for name in manifest["Layers"]]
    return SavedImage(config, layers)
