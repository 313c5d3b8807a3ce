"""Container environment: env, envFrom, valueFrom (fieldRef, resourceFieldRef, configMapKeyRef,
secretKeyRef) and Kubernetes' $(VAR) expansion."""

from __future__ import annotations

import base64
import re
from typing import Callable

from .api import Api, ApiError


class ConfigError(Exception):
    """A referenced ConfigMap/Secret/key is missing (reported as CreateContainerConfigError)."""


_LABEL_RE = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def field_value(pod: dict, path: str) -> str:
    """A fieldRef fieldPath (also used by downwardAPI volumes)."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    m = _LABEL_RE.match(path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldPath {path!r}")


def resource_value(container: dict | None, ref: dict, node_allocatable: dict) -> str:
    """resourceFieldRef: the container's limit/request as written; the node's allocatable for an
    unset limit (as the kubelet does). The divisor is ignored."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    value = ((container or {}).get("resources", {}).get(kind) or {}).get(name)
    if value is None:
        value = node_allocatable.get(name, "0") if kind == "limits" else "0"
    return str(value)


def expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) -> value when VAR is defined; $$ -> $; anything else is left as written."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i : end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


class Lookup:
    """Fetches ConfigMaps and Secrets of one namespace, caching them for one container start."""

    def __init__(self, api: Api, namespace: str):
        self.api = api
        self.ns = namespace
        self.cache: dict[tuple[str, str], dict | None] = {}

    def _get(self, kind: str, name: str) -> dict | None:
        key = (kind, name)
        if key not in self.cache:
            try:
                self.cache[key] = self.api.get(f"/api/v1/namespaces/{self.ns}/{kind}/{name}")
            except ApiError as e:
                if e.status != 404:
                    raise
                self.cache[key] = None
        return self.cache[key]

    def configmap(self, name: str, optional: bool = False) -> dict[str, bytes] | None:
        obj = self._get("configmaps", name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'configmap "{name}" not found')
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def secret(self, name: str, optional: bool = False) -> dict[str, bytes] | None:
        obj = self._get("secrets", name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'secret "{name}" not found')
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data


def key_ref(lookup: Lookup, kind: str, ref: dict) -> str | None:
    optional = bool(ref.get("optional"))
    getter: Callable = lookup.configmap if kind == "configmap" else lookup.secret
    data = getter(ref.get("name", ""), optional)
    if data is None:
        return None
    key = ref.get("key", "")
    if key not in data:
        if optional:
            return None
        raise ConfigError(f'couldn\'t find key {key} in {kind} {lookup.ns}/{ref.get("name", "")}')
    return data[key].decode("utf-8", "replace")


def build_env(
    pod: dict, container: dict, lookup: Lookup, base: dict[str, str], node_allocatable: dict
) -> dict[str, str]:
    env = dict(base)
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        if "configMapRef" in src:
            ref = src["configMapRef"]
            data = lookup.configmap(ref.get("name", ""), bool(ref.get("optional")))
        elif "secretRef" in src:
            ref = src["secretRef"]
            data = lookup.secret(ref.get("name", ""), bool(ref.get("optional")))
        else:
            data = None
        for k, v in (data or {}).items():
            env[prefix + k] = v.decode("utf-8", "replace")
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        vf = var["valueFrom"]
        value: str | None
        if "fieldRef" in vf:
            value = field_value(pod, vf["fieldRef"].get("fieldPath", ""))
        elif "resourceFieldRef" in vf:
            value = resource_value(container, vf["resourceFieldRef"], node_allocatable)
        elif "configMapKeyRef" in vf:
            value = key_ref(lookup, "configmap", vf["configMapKeyRef"])
        elif "secretKeyRef" in vf:
            value = key_ref(lookup, "secret", vf["secretKeyRef"])
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(vf)}")
        if value is not None:
            env[name] = value
    return env
