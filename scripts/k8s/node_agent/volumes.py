"""Pod volumes as host directories under the pod's state directory, and per-container bind mounts.

emptyDir, configMap, secret, downwardAPI and projected (configMap/secret/downwardAPI sources) are
directories under <state>/<ns>_<pod>/volumes/<name>; contents are written once, when the pod
starts (no later refresh). persistentVolumeClaim: the bound PersistentVolume's hostPath when the
claim is Bound to one, else <state>/pvc/<ns>/<claimName> (kept across pods: a claim's data
outlives its pods). hostPath: the host path itself.
"""

from __future__ import annotations

import os
import shutil
import threading

from .envs import ConfigError, Lookup, field_value, resource_value


def _write_items(dest: str, data: dict[str, bytes], items: list | None, default_mode: int | None) -> None:
    mode = 0o644 if default_mode is None else default_mode
    if items:
        chosen = []
        for item in items:
            if item.get("key") not in data:
                raise ConfigError(f"key {item.get('key')!r} not found")
            chosen.append((item["path"], data[item["key"]], item.get("mode", mode)))
    else:
        chosen = [(k, v, mode) for k, v in data.items()]
    for rel, value, m in chosen:
        path = _inside(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(value)
        os.chmod(path, m)


def _inside(base: str, rel: str) -> str:
    path = os.path.normpath(os.path.join(base, rel))
    if not (path == base or path.startswith(base.rstrip("/") + "/")):
        raise ConfigError(f"path {rel!r} escapes the volume")
    return path


def _downward(dest: str, pod: dict, spec: dict, node_allocatable: dict) -> None:
    data: dict[str, bytes] = {}
    modes = {}
    containers = {c["name"]: c for c in pod["spec"].get("containers", [])}
    for item in spec.get("items") or []:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resource_value(containers.get(ref.get("containerName", "")), ref, node_allocatable)
        else:
            continue
        data[item["path"]] = value.encode()
        if "mode" in item:
            modes[item["path"]] = item["mode"]
    _write_items(dest, data, None, spec.get("defaultMode"))
    for rel, m in modes.items():
        os.chmod(_inside(dest, rel), m)


def prepare(api, pod: dict, pod_dir: str, state_dir: str, node_allocatable: dict) -> dict[str, str]:
    """Creates every volume of the pod; returns volume name -> host path."""
    ns = pod["metadata"]["namespace"]
    lookup = Lookup(api, ns)
    out: dict[str, str] = {}
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        dest = os.path.join(pod_dir, "volumes", name)
        if "persistentVolumeClaim" in vol:
            out[name] = _pvc_path(api, ns, vol["persistentVolumeClaim"].get("claimName", ""), state_dir)
            continue
        if "hostPath" in vol:
            hp = vol["hostPath"]
            path = hp.get("path", "")
            if not os.path.exists(path):
                if hp.get("type") == "DirectoryOrCreate":
                    os.makedirs(path, exist_ok=True)
                elif hp.get("type") == "FileOrCreate":
                    open(path, "a").close()
                else:
                    raise ConfigError(f"hostPath {path} does not exist")
            out[name] = path
            continue
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        if "emptyDir" in vol:
            os.chmod(dest, 0o777)
        elif "configMap" in vol:
            cm = vol["configMap"]
            data = lookup.configmap(cm.get("name", ""), bool(cm.get("optional")))
            _write_items(dest, data or {}, cm.get("items"), cm.get("defaultMode"))
        elif "secret" in vol:
            sec = vol["secret"]
            data = lookup.secret(sec.get("secretName", ""), bool(sec.get("optional")))
            _write_items(dest, data or {}, sec.get("items"), sec.get("defaultMode"))
        elif "downwardAPI" in vol:
            _downward(dest, pod, vol["downwardAPI"], node_allocatable)
        elif "projected" in vol:
            proj = vol["projected"]
            for src in proj.get("sources") or []:
                if "configMap" in src:
                    cm = src["configMap"]
                    data = lookup.configmap(cm.get("name", ""), bool(cm.get("optional")))
                    _write_items(dest, data or {}, cm.get("items"), proj.get("defaultMode"))
                elif "secret" in src:
                    sec = src["secret"]
                    data = lookup.secret(sec.get("name", ""), bool(sec.get("optional")))
                    _write_items(dest, data or {}, sec.get("items"), proj.get("defaultMode"))
                elif "downwardAPI" in src:
                    _downward(dest, pod, {**src["downwardAPI"], "defaultMode": proj.get("defaultMode")}, node_allocatable)
                # serviceAccountToken: skipped (no token controller in these tests).
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise ConfigError(f"volume {name}: unsupported volume type {kinds}")
        out[name] = dest
    return out


def _pvc_path(api, ns: str, claim: str, state_dir: str) -> str:
    pvc = api.get_or_none(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
    if pvc is not None and pvc.get("spec", {}).get("volumeName"):
        pv = api.get_or_none(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
        host = ((pv or {}).get("spec", {}).get("hostPath") or {}).get("path")
        if host:
            os.makedirs(host, exist_ok=True)
            return host
    path = os.path.join(state_dir, "pvc", ns, claim)
    os.makedirs(path, exist_ok=True)
    return path


class MountPoints:
    """Mount points the agent had to create on the host (the pods share the host's filesystem),
    reference-counted by pod so they are removed once no pod mounts over them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: dict[str, set[str]] = {}  # path -> pod uids

    def ensure(self, uid: str, target: str, is_dir: bool) -> None:
        with self.lock:
            missing = []
            p = target
            while not os.path.lexists(p):
                missing.append(p)
                p = os.path.dirname(p)
            for path in reversed(missing):
                if path == target and not is_dir:
                    open(path, "a").close()
                else:
                    os.mkdir(path)
                self.created.setdefault(path, set())
            for path in self.created:
                if path == target or target.startswith(path + "/"):
                    self.created[path].add(uid)

    def release(self, uid: str) -> None:
        with self.lock:
            for path in sorted(self.created, key=len, reverse=True):
                users = self.created[path]
                users.discard(uid)
                if not users:
                    try:
                        if os.path.isdir(path) and not os.path.islink(path):
                            os.rmdir(path)
                        else:
                            os.unlink(path)
                    except OSError:
                        pass
                    del self.created[path]


    def release_all(self) -> None:
        with self.lock:
            for users in self.created.values():
                users.clear()
        self.release("")


def read_only_volumes(pod: dict) -> set[str]:
    """Volumes that are read-only whatever the mount says (PVC/hostPath... readOnly: true)."""
    out = set()
    for vol in pod["spec"].get("volumes") or []:
        for kind in ("persistentVolumeClaim", "hostPath"):
            if (vol.get(kind) or {}).get("readOnly"):
                out.add(vol["name"])
    return out


def container_mounts(container: dict, volume_paths: dict[str, str], read_only: set[str] = frozenset()) -> list[dict]:
    """[{"source", "target", "readOnly"}] for the container's volumeMounts."""
    mounts = []
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        if name not in volume_paths:
            raise ConfigError(f"volumeMount {name!r}: no such volume")
        source = volume_paths[name]
        sub = vm.get("subPath") or ""
        if sub:
            source = _inside(source, sub)
            if not os.path.exists(source):
                os.makedirs(source)
        target = vm.get("mountPath", "")
        if not target.startswith("/"):
            raise ConfigError(f"mountPath {target!r} is not absolute")
        mounts.append({"source": source, "target": os.path.normpath(target), "readOnly": bool(vm.get("readOnly")) or name in read_only})
    return mounts
