"""The image table: maps a container image to local programs (there are no container images here).

See images.json for the format. resolve() turns a container spec into argv with argv[0] an
absolute path and the image's files (read-only bind mounts standing in for the image's contents),
or raises ImageError (no command at all, an image file missing on the host) / ProgramNotFound
(argv[0] not found). An absolute argv[0] under one of the container's mounts is looked up through
that mount (a binary an init container copied into an emptyDir). path_prefix() gives the
directories the table's "podRules" put first on PATH for a pod with a given label.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_TABLE = os.path.join(os.path.dirname(__file__), "images.json")


class ImageError(Exception):
    """The container cannot be created (reported as waiting: CreateContainerError)."""


class ProgramNotFound(Exception):
    """argv[0] does not exist (reported as terminated: StartError, exit code 128)."""


def repository(image: str) -> str:
    """"docker.io/library/python:3.11@sha256:..." -> "python"."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


@dataclass
class Resolved:
    argv: list[str]
    program: str  # absolute path of argv[0]
    files: list[dict] = field(default_factory=list)  # [{"source", "target", "readOnly": True}]
    exec_argv: list[str] = field(default_factory=list)  # what is exec'd (see resolve)


class ImageTable:
    def __init__(self, path: str = DEFAULT_TABLE, search_path: str | None = None):
        with open(path) as f:
            table = json.load(f)
        self.programs: dict = table.get("programs", {})
        self.images: list[dict] = table.get("images", [])
        self.pod_rules: list[dict] = table.get("podRules", [])
        self.search_path = search_path if search_path is not None else os.environ.get("PATH", os.defpath)

    def rule(self, image: str) -> dict:
        repo = repository(image)
        for rule in self.images:
            if fnmatch.fnmatchcase(repo, rule.get("match", "")):
                return rule
        return {"entrypoint": [], "cmd": []}

    def path_prefix(self, labels: dict | None) -> list[str]:
        """Directories put first on PATH for a pod with these labels: each "podRules" entry
        whose "podLabel" the pod has gives its "pathPrefix" ({repo} expanded; the variable
        named by "env" overrides it when set)."""
        out = []
        for rule in self.pod_rules:
            if rule.get("podLabel") not in (labels or {}):
                continue
            path = (rule.get("env") and os.environ.get(rule["env"])) or rule.get("pathPrefix", "")
            if path:
                out.append(path.replace("{repo}", REPO))
        return out

    @staticmethod
    def host_path(path: str, mounts: list[dict]) -> str:
        """Where a container path is on the host: through the deepest mount over it, else the
        same path (containers share the host's filesystem)."""
        best: tuple[str, str] | None = None  # (target, source)
        for m in mounts:
            target = m["target"].rstrip("/") or "/"
            if path == target or path.startswith(target.rstrip("/") + "/"):
                if best is None or len(target) > len(best[0]):
                    best = (target, m["source"])
        if best is None:
            return path
        target, source = best
        rest = path[len(target):].lstrip("/")
        return os.path.join(source, rest) if rest else source

    def program(self, name: str, mounts: list[dict] = ()) -> str | None:
        entry = self.programs.get(name)
        if entry is not None:
            if isinstance(entry, str):
                entry = {"path": entry}
            path = (entry.get("env") and os.environ.get(entry["env"])) or entry.get("path", "")
            path = path.replace("{repo}", REPO)
            return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
        if "/" in name:
            # Checked where it is on the host; exec'd by its container path (after the mounts).
            host = self.host_path(name, list(mounts)) if name.startswith("/") else name
            return name if os.path.isfile(host) and os.access(host, os.X_OK) else None
        return shutil.which(name, path=self.search_path)

    def files(self, image: str, rule: dict) -> list[dict]:
        """The rule's "files" ({container path: host path, {repo} expanded}) as read-only bind
        mounts, shallowest target first; a host path that does not exist is an ImageError."""
        out = []
        for target, host in (rule.get("files") or {}).items():
            if not target.startswith("/"):
                raise ImageError(f"image {image!r}: file target {target!r} is not absolute (agent's image table)")
            source = host.replace("{repo}", REPO)
            if not os.path.exists(source):
                raise ImageError(f"image {image!r}: {target} comes from {source}, which does not exist on the node")
            out.append({"source": source, "target": os.path.normpath(target), "readOnly": True})
        return sorted(out, key=lambda m: m["target"].count("/"))

    def resolve(self, image: str, command: list[str] | None, args: list[str] | None,
                mounts: list[dict] = ()) -> Resolved:
        """Kubernetes semantics: command replaces the image's ENTRYPOINT, args its CMD; a command
        without args drops the image's CMD. `mounts` (the container's volume mounts, as
        volumes.container_mounts gives them) are where an absolute argv[0] is looked up."""
        rule = self.rule(image)
        if command:
            argv = list(command) + list(args or [])
        else:
            argv = list(rule.get("entrypoint", [])) + list(args if args else rule.get("cmd", []))
        if not argv:
            raise ImageError(f"no command specified: image {image!r} has no entrypoint in the agent's image table")
        files = self.files(image, rule)
        program = self.program(argv[0], [*files, *mounts])
        if program is None:
            raise ProgramNotFound(
                f'exec: "{argv[0]}": executable file not found (image {image!r}; see the agent\'s image table)'
            )
        # A name from `programs` is exec'd with argv[0] = its path: a venv's Python finds its
        # pyvenv.cfg (and site-packages) from argv[0], and "python3" alone would make it search
        # PATH and start as the base interpreter, without the venv's packages.
        exec_argv = [program] + argv[1:] if argv[0] in self.programs else argv
        return Resolved(argv=argv, program=program, files=files, exec_argv=exec_argv)
