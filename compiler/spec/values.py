"""Rules for spec values that become names, paths and text of a package; each says why a value is refused.

Every function returns None for a good value, else the reason (a phrase that follows the key name).
"""

from __future__ import annotations

import re

# Names and versions that become path parts and tags: the workspace's own rule (store.VERSION_PATTERN).
ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ASSET_NAME_RULE = "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
ROUTE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_PATH_BYTES, MAX_PART_BYTES = 4096, 255
MAX_CONTAINER_PATH = 1024

APP_ROOT = "/var/azureml-app"
PKGC_HOME = "/opt/pkgc"
# A model placed at, inside or above one of these would break the system or pkgc's environment.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
               "/sbin", "/sys", "/tmp", "/usr", PKGC_HOME)  # fmt: skip
# Folders that may hold a model below them but are not themselves a model's place.
SHARED_DIRS = ("/home", "/mnt", "/opt", "/srv", "/var", APP_ROOT)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


def text_problem(value: str) -> str | None:
    """Free text (tags, environment variable values): anything but a NUL character."""
    return "must not hold a NUL character" if "\x00" in value else None


def image_text_problem(value: str) -> str | None:
    """Text that reaches the image as it is (environment variable values: ``ENV`` lines and the image
    config): any character a Dockerfile line can carry, so anything but a newline or NUL, as UTF-8.
    Refused when the spec is read; the planner keeps the same rule as a backstop for values from
    elsewhere (the base image, a model's name)."""
    if "\n" in value or "\x00" in value:
        return "must not hold a newline or NUL: it reaches the image, and no Dockerfile line can carry one"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid UTF-8 text: it reaches the image"
    return None


def line_problem(value: str) -> str | None:
    """One line of text (references, script names): no control characters."""
    return "must not hold control characters (newline, tab, NUL, ...)" if CONTROL.search(value) else None


def host_path_problem(value: str) -> str | None:
    """A path on this machine, as written in the spec: one line, and short enough for the filesystem."""
    if problem := line_problem(value):
        return problem
    if len(value.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in value.split("/")):
        return f"has a path part longer than {MAX_PART_BYTES} bytes"
    return None


def inner_path_problem(value: str) -> str | None:
    """A path relative to a folder that must stay inside it (the scoring script in the code folder)."""
    if problem := host_path_problem(value):
        return problem
    if value.startswith("/"):
        return "must be a path relative to the code folder"
    if ".." in value.split("/"):
        return "must not leave the code folder ('..')"
    return None


def container_path_problem(path: str, code_dir: str | None = None) -> str | None:
    """Why ``path`` cannot be where the model is placed in the container (``code_dir``: the code's folder)."""
    if not path.startswith("/"):
        return "must be an absolute path inside the container"
    if CONTROL.search(path):
        return "must not hold control characters (newline, NUL, ...)"
    if ":" in path or "," in path:
        return "must not hold ':' or ',' (container engines read them as mount options)"
    if path == "/":
        return "must not be '/'"
    if any(part in ("", ".", "..") for part in path.split("/")[1:]):
        return "must be a normalised absolute path (no '..', '.', '//' or trailing '/')"
    if len(path.encode("utf-8", "surrogateescape")) > MAX_CONTAINER_PATH:
        return f"is longer than {MAX_CONTAINER_PATH} bytes"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in path.split("/")):
        return f"has a path part longer than {MAX_PART_BYTES} bytes"
    for folder in SYSTEM_DIRS:
        if _inside(path, folder) or folder.startswith(path + "/"):
            return f"must not be inside or above {folder} (a system or pkgc folder)"
    if path in SHARED_DIRS:
        return f"must not be {path} itself (name a folder below it)"
    if _inside(path, "/var") and not path.startswith(APP_ROOT + "/"):
        return f"must not be inside the system folder /var (use a folder under {APP_ROOT})"
    if code_dir and (_inside(path, code_dir) or code_dir.startswith(path + "/")):
        return f"must not be inside or above the code folder {code_dir}"
    return None
