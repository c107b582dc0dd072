"""Kubernetes manifests: rendered with kustomize, validated against the schemas, safe by default."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from plextuner.config import load_settings
from tests.conftest import require_tool

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.32.0"
KUSTOMIZATIONS = ["base", "overlays/hostnetwork", "overlays/service"]


def render(path: str) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_object_validates(path: str) -> None:
    """Every rendered object passes the Kubernetes schema of the pinned version."""
    import kubernetes_validate

    objs = render(path)
    assert {o["kind"] for o in objs} >= {
        "Namespace",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    }
    for obj in objs:
        if obj["kind"] == "ServiceMonitor":  # a CRD: no schema in the core set
            assert obj["spec"]["endpoints"][0]["port"] == "http"
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert obj["metadata"].get("namespace", "plextuner") == "plextuner"


def test_deployment_shape() -> None:
    """One replica, Recreate, probes, non-root read-only container, secrets only by reference."""
    dep = by_kind(render("base"), "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["memory"]
    projected = [v["projected"] for v in pod["volumes"] if "projected" in v]
    assert projected[0]["sources"][0]["secret"]["name"] == "plextuner-secrets"
    for env in container.get("env", []):
        if re.search(r"(?i)pass|token|secret|url", env["name"]):
            assert env["name"].endswith("_FILE") or "valueFrom" in env, env
            assert env.get("value", "/run/secrets/").startswith("/run/secrets/plextuner/")
    names = {e["name"] for e in container["env"]}
    assert {"PLEX_TUNER_PLEX__TOKEN_FILE", "PLEX_TUNER_ADMIN_TOKEN_FILE"} <= names
    ports = {(p["containerPort"], p["protocol"]) for p in container["ports"]}
    assert {(5004 + i, "TCP") for i in range(6)} | {(65001, "UDP")} <= ports
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_service_ports_six_devices_and_udp() -> None:
    """The Service exposes six device ports, UDP 65001 (discovery) and TCP 65001 (control)."""
    svc = by_kind(render("base"), "Service")
    ports = {(p["port"], p["protocol"]) for p in svc["spec"]["ports"]}
    assert ports == {(5004 + i, "TCP") for i in range(6)} | {(65001, "UDP"), (65001, "TCP")}
    assert by_kind(render("overlays/service"), "Service")["spec"]["type"] == "LoadBalancer"


def test_hostnetwork_overlay() -> None:
    """The hostNetwork overlay sets hostNetwork and the matching DNS policy."""
    pod = by_kind(render("overlays/hostnetwork"), "Deployment")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_configmap_is_a_valid_config(tmp_path: Path) -> None:
    """The shipped config.yaml loads (secret files stand in for the mounted Secret)."""
    cm = by_kind(render("base"), "ConfigMap")
    text = cm["data"]["config.yaml"].replace("/run/secrets/plextuner", str(tmp_path))
    for name in ("m3u-url", "plex-token", "admin-token"):
        (tmp_path / name).write_text("placeholder-value")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    dep = by_kind(render("base"), "Deployment")
    env = {
        e["name"]: e["value"].replace("/run/secrets/plextuner", str(tmp_path))
        for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    settings = load_settings(cfg, env=env)
    assert len(settings.buckets) == 6 and settings.providers[0].m3u_url is not None
    assert settings.plex.token is not None and settings.admin_token is not None


def test_deploy_script_never_prints_secrets(tmp_path: Path) -> None:
    """deploy.sh builds the Secret from the environment, applies the overlay, prints no secret."""
    real = require_tool("kubectl")
    log = tmp_path / "calls"
    shim = tmp_path / "kubectl"
    shim.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "ARGS $*" >> {log}\n'
        'if [[ "$1" == "apply" ]]; then\n'
        f'  if [[ "$2" == "-f" ]]; then cat >> {log}; else {real} kustomize "$3" > /dev/null; fi\n'
        "  exit 0\nfi\n"
        f'exec {real} "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    secret_url = "http://bob:Zq9-very-secret@provider.invalid/get.php?password=Zq9-very-secret"
    env = {
        **os.environ,
        "KUBECTL": str(shim),
        "PLEXTUNER_M3U_URL": secret_url,
        "PLEXTUNER_PLEX_TOKEN": "plex-tok-3141592",
    }
    result = subprocess.run(
        ["bash", str(K8S / "deploy.sh"), "hostnetwork"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Zq9-very-secret" not in output and "plex-tok-3141592" not in output
    calls = log.read_text()
    assert base64.b64encode(secret_url.encode()).decode() in calls
    assert f"ARGS apply -k {K8S}/overlays/hostnetwork" in calls


def test_shellcheck_every_script() -> None:
    """Every shell script in the repo is shellcheck clean."""
    shellcheck = require_tool("shellcheck")
    scripts = [p for p in ROOT.rglob("*.sh") if ".venv" not in p.parts] + [ROOT / ".ci" / "run"]
    result = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_dockerfile_rules() -> None:
    """Non-root, pinned base, ffmpeg shipped, ports exposed, a healthcheck, an init as PID 1
    (tini: zombies reaped, SIGTERM passed on)."""
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert froms and all(re.search(r":\d+\.\d+\.\d+", f) for f in froms)
    assert re.search(r"^USER\s+10001", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert re.search(r"^EXPOSE .*5004.*65001/udp", text, re.MULTILINE)
    assert "ffmpeg" in text and 'ENTRYPOINT ["/usr/bin/tini", "--", "plextuner"]' in text
    assert re.search(r"apt-get install [^\n]*\btini\b", text)
    assert not re.search(r"^ADD\s+https?://", text, re.MULTILINE)
    assert (
        "apt-get install -y --no-install-recommends" in text and "rm -rf /var/lib/apt/lists" in text
    )
