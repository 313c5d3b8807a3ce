"""Kubernetes API client over HTTPS: bearer token + CA file, JSON in and out, watch streams.

Standard library only (http.client + ssl). One connection per call: the agent makes few calls,
and a fresh connection per request keeps the threads independent.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterator


class ApiError(Exception):
    def __init__(self, status: int, body: str, method: str, path: str):
        self.status = status
        self.body = body
        try:
            self.reason = json.loads(body).get("reason", "")
        except (ValueError, AttributeError):
            self.reason = ""
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")


@dataclass
class ApiConfig:
    server: str  # https://127.0.0.1:PORT
    token: str
    ca_file: str | None

    @classmethod
    def from_env_file(cls, path: str) -> "ApiConfig":
        env: dict[str, str] = {}
        with open(path) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    env[key] = value
        return cls.from_mapping(env)

    @classmethod
    def from_mapping(cls, env: dict[str, str]) -> "ApiConfig":
        try:
            return cls(env["OSPREY_K8S_SERVER"], env["OSPREY_K8S_TOKEN"], env.get("OSPREY_K8S_CA_FILE") or None)
        except KeyError as e:
            raise SystemExit(f"missing {e.args[0]} (pass --env-file DIR/env from start-apiserver.sh)") from None


class Api:
    def __init__(self, config: ApiConfig, timeout: float = 15.0):
        self.config = config
        self.timeout = timeout
        url = urllib.parse.urlsplit(config.server)
        if url.scheme != "https":
            raise ValueError(f"only https servers are supported: {config.server}")
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 443
        self.ssl = ssl.create_default_context(cafile=config.ca_file)

    def _conn(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=timeout)

    @staticmethod
    def path(path: str, params: dict[str, Any] | None = None) -> str:
        if params:
            query = {k: v for k, v in params.items() if v is not None}
            if query:
                return path + "?" + urllib.parse.urlencode(query)
        return path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        full = self.path(path, params)
        headers = {"Authorization": "Bearer " + self.config.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn = self._conn(self.timeout)
        try:
            conn.request(method, full, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 300:
            raise ApiError(resp.status, raw, method, full)
        return json.loads(raw) if raw else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("DELETE", path, body, params=params)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 60, **params: Any) -> Iterator[dict]:
        """Yields watch events ({"type": ..., "object": ...}) until the server ends the stream.

        The server closes the stream after timeout_seconds; the socket times out a little later so a
        dead connection cannot block the caller forever.
        """
        full = self.path(
            path,
            {
                **params,
                "watch": "1",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_seconds),
            },
        )
        conn = self._conn(timeout_seconds + 30)
        try:
            conn.request("GET", full, headers={"Authorization": "Bearer " + self.config.token})
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(resp.status, resp.read().decode("utf-8", "replace"), "GET", full)
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        finally:
            conn.close()
