"""Unit tests of the node agent's pure parts (no API server, no root)."""

from __future__ import annotations

import json
import os
import stat

import pytest

import agent_harness  # noqa: F401 - puts scripts/k8s on sys.path

from node_agent import hosts
from node_agent.envs import expand, field_value
from node_agent.images import REPO, ImageError, ImageTable, ProgramNotFound, repository


def test_repository_strips_registry_defaults_tag_and_digest():
    assert repository("python:3.11") == "python"
    assert repository("docker.io/library/python:3.11-slim") == "python"
    assert repository("ghcr.io/acme/osprey:v1@sha256:abc") == "ghcr.io/acme/osprey"
    assert repository("localhost:5000/osprey") == "localhost:5000/osprey"


def test_image_table_resolution(tmp_path, monkeypatch):
    fake = tmp_path / "osprey"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("OSPREY_BIN", str(fake))
    table = ImageTable()
    r = table.resolve("ghcr.io/acme/osprey:1.0", None, ["serve", "--port", "8000"])
    assert r.program == str(fake) and r.argv == ["osprey", "serve", "--port", "8000"]
    r = table.resolve("python:3.11", None, None)
    assert r.program == os.path.join(REPO, ".venv", "bin", "python") and r.argv == ["python3"]
    assert r.exec_argv == [r.program]  # a venv's Python needs its path in argv[0]
    r = table.resolve("python:3.11", ["python", "-c", "pass"], None)
    assert r.argv == ["python", "-c", "pass"]
    r = table.resolve("busybox", ["sh", "-c", "true"], None)
    assert os.path.basename(r.program) == "sh" and r.exec_argv == ["sh", "-c", "true"]
    with pytest.raises(ImageError):
        table.resolve("registry.example/unknown", None, None)
    with pytest.raises(ProgramNotFound):
        table.resolve("busybox", ["no-such-program-osprey"], None)
    monkeypatch.setenv("OSPREY_BIN", str(tmp_path / "missing"))
    with pytest.raises(ProgramNotFound):
        table.resolve("osprey", None, None)


def test_default_osprey_path_is_inside_the_repository(monkeypatch):
    monkeypatch.delenv("OSPREY_BIN", raising=False)
    entry = ImageTable().programs["osprey"]
    assert entry["path"] == "{repo}/target/debug/osprey"


def _table(tmp_path, images: list[dict]) -> ImageTable:
    path = tmp_path / "images.json"
    path.write_text(json.dumps({"programs": {}, "images": images}))
    return ImageTable(str(path))


def test_image_files_resolve_to_read_only_mounts(tmp_path):
    host = tmp_path / "contents"
    host.mkdir()
    (host / "run.py").write_text("")
    table = _table(tmp_path, [{"match": "acme/app", "cmd": ["sh"],
                               "files": {"/opt/app/run.py": str(host / "run.py"), "/opt/app/": str(host)}}])
    r = table.resolve("docker.io/acme/app:1", None, None)
    assert r.files == [{"source": str(host), "target": "/opt/app", "readOnly": True},
                       {"source": str(host / "run.py"), "target": "/opt/app/run.py", "readOnly": True}]
    assert table.resolve("acme/app", ["sh", "-c", "true"], None).files == r.files  # command keeps the files
    assert table.resolve("other", ["sh"], None).files == []


def test_image_files_expand_repo_and_the_mnist_rule(tmp_path):
    table = ImageTable()
    r = table.resolve("docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727", None, ["--epochs=1"])
    assert r.argv == ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]
    assert r.files == [{"source": os.path.join(REPO, "examples", "training"), "target": "/opt/pytorch-mnist", "readOnly": True}]
    assert os.path.isfile(os.path.join(r.files[0]["source"], "mnist.py"))
    r = table.resolve("pytorch/pytorch:2.1.0-cuda11.8-cudnn8-runtime", None, None)
    assert r.argv == ["python3"] and r.files == []
    r = _table(tmp_path, [{"match": "*", "cmd": ["sh"], "files": {"/x": "{repo}/scripts/k8s"}}]).resolve("a", None, None)
    assert r.files[0]["source"] == os.path.join(REPO, "scripts", "k8s")


def test_image_files_missing_host_path_cannot_create_the_container(tmp_path):
    table = _table(tmp_path, [{"match": "*", "cmd": ["sh"], "files": {"/opt/x": str(tmp_path / "missing")}}])
    with pytest.raises(ImageError, match="missing"):
        table.resolve("acme/app", None, None)
    table = _table(tmp_path, [{"match": "*", "cmd": ["sh"], "files": {"opt/x": str(tmp_path)}}])
    with pytest.raises(ImageError, match="not absolute"):
        table.resolve("acme/app", None, None)


def test_absolute_program_is_found_through_the_containers_mounts(tmp_path):
    """A binary an init container copied into an emptyDir exists only under the volume's host
    directory: it is checked there and exec'd by its container path."""
    vol = tmp_path / "volumes" / "osprey-launcher"
    vol.mkdir(parents=True)
    binary = vol / "osprey"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    table = _table(tmp_path, [{"match": "*", "cmd": []}])
    mounts = [{"source": str(tmp_path), "target": "/osprey-parent", "readOnly": False},
              {"source": str(vol), "target": "/osprey", "readOnly": True}]
    r = table.resolve("python:3.11", ["/osprey/osprey", "pipeline", "launch"], None, mounts)
    assert r.program == "/osprey/osprey" and r.exec_argv == ["/osprey/osprey", "pipeline", "launch"]
    assert ImageTable.host_path("/osprey/osprey", mounts) == str(binary)
    assert ImageTable.host_path("/osprey-parent/volumes", mounts) == str(tmp_path / "volumes")
    assert ImageTable.host_path("/osprey", mounts) == str(vol)
    assert ImageTable.host_path("/osprey2/x", mounts) == "/osprey2/x"
    with pytest.raises(ProgramNotFound):
        table.resolve("python:3.11", ["/osprey/missing"], None, mounts)
    with pytest.raises(ProgramNotFound):  # not on the host without the mount
        table.resolve("python:3.11", ["/osprey/osprey"], None)


def test_pod_rules_put_kfp_python_first_on_pipeline_pods_path(tmp_path, monkeypatch):
    monkeypatch.delenv("OSPREY_AGENT_PIPELINE_PATH", raising=False)
    table = ImageTable()
    assert table.path_prefix({"pipelines.osprey.dev/run": "r1"}) == [os.path.join(REPO, ".venv-kfp", "bin")]
    assert table.path_prefix({"training.kubeflow.org/job-name": "j"}) == []
    assert table.path_prefix(None) == []
    monkeypatch.setenv("OSPREY_AGENT_PIPELINE_PATH", str(tmp_path))
    assert table.path_prefix({"pipelines.osprey.dev/run": "r1"}) == [str(tmp_path)]
    # Image resolution is unchanged by pod rules: python:3.11 still runs .venv's Python.
    assert table.resolve("python:3.11", None, None).program == os.path.join(REPO, ".venv", "bin", "python")


def test_expand_like_kubernetes():
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(UNDEFINED) $A $", env) == "$(UNDEFINED) $A $"
    assert expand("$$$$ $(A", env) == "$$ $(A"


def test_field_value():
    pod = {"metadata": {"name": "p", "namespace": "n", "labels": {"app": "web"}}, "spec": {"nodeName": "node"},
           "status": {"podIP": "10.1.2.3"}}
    assert field_value(pod, "metadata.labels['app']") == "web"
    assert field_value(pod, "metadata.labels['none']") == ""
    assert field_value(pod, "status.podIP") == "10.1.2.3"
    assert field_value(pod, "spec.nodeName") == "node"


def _pod(name, ip, labels, ready=True, **spec):
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": spec,
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_hosts_headless_and_cluster_ip_services():
    pods = [_pod("a", "10.0.0.2", {"app": "x"}, hostname="a-0", subdomain="hl"),
            _pod("b", "10.0.0.3", {"app": "x"}),
            _pod("c", "10.0.0.4", {"app": "x"}, ready=False)]
    services = [
        {"metadata": {"name": "hl"}, "spec": {"clusterIP": "None", "selector": {"app": "x"}}},
        {"metadata": {"name": "vip"}, "spec": {"clusterIP": "10.0.0.10", "selector": {"app": "x"}}},
        {"metadata": {"name": "manual"}, "spec": {"clusterIP": "None"}},
    ]
    endpoints = {"manual": {"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}}
    text = hosts.render(pods[0], "10.0.0.2", services, endpoints, pods)
    lines = text.splitlines()
    assert "10.0.0.2\ta-0.hl.ns.svc.cluster.local a-0" in lines
    assert "10.0.0.2\thl.ns.svc.cluster.local hl.ns.svc hl.ns hl" in lines
    assert "10.0.0.3\thl.ns.svc.cluster.local hl.ns.svc hl.ns hl" in lines
    assert not any(line.startswith("10.0.0.4") for line in lines)  # not ready
    assert "10.0.0.2\ta-0.hl.ns.svc.cluster.local a-0.hl.ns.svc a-0.hl" in lines
    assert [line for line in lines if line.endswith(" vip")] == ["10.0.0.2\tvip.ns.svc.cluster.local vip.ns.svc vip.ns vip"]
    assert "10.0.0.9\tmanual.ns.svc.cluster.local manual.ns.svc manual.ns manual" in lines


def test_hosts_write_in_place_keeps_inode(tmp_path):
    p = tmp_path / "hosts"
    assert hosts.write_in_place(str(p), "one\n")
    ino = p.stat().st_ino
    assert not hosts.write_in_place(str(p), "one\n")
    assert hosts.write_in_place(str(p), "two, longer\n")
    assert p.stat().st_ino == ino and p.read_text() == "two, longer\n"


def test_watch_relists_after_410_gone():
    """The pod watch lists, watches from the list's resourceVersion, and lists again when the
    server answers 410 Gone (as an ERROR event or as the watch request's status)."""
    from node_agent.agent import Agent
    from node_agent.api import ApiError
    from node_agent.netns import Network

    calls = []
    seen = []

    class FakeApi:
        def get(self, path, **params):
            calls.append(("list", params["fieldSelector"]))
            n = len([c for c in calls if c[0] == "list"])
            return {"metadata": {"resourceVersion": f"{n}0"}, "items": []}

        def watch(self, path, rv, **params):
            calls.append(("watch", rv))
            watches = len([c for c in calls if c[0] == "watch"])
            if watches == 1:
                yield {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}
            elif watches == 2:
                raise ApiError(410, "{}", "GET", path)
            else:
                yield {"type": "ADDED", "object": {"metadata": {"uid": "u1", "resourceVersion": "31"}}}
                agent.stop.set()
                yield {"type": "ADDED", "object": {"metadata": {"uid": "u2", "resourceVersion": "32"}}}

    agent = Agent(FakeApi(), ["n1"], "/nonexistent-state", Network("ospt-unit", "10.250.0.0/24"), None, {}, {}, [])
    agent._upsert = lambda node, pod: seen.append((node, pod["metadata"]["uid"]))
    agent._watch_loop("n1")
    assert calls == [("list", "spec.nodeName=n1"), ("watch", "10"), ("list", "spec.nodeName=n1"), ("watch", "20"),
                     ("list", "spec.nodeName=n1"), ("watch", "30")]
    assert seen == [("n1", "u1")]
