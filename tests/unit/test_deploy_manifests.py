"""deploy/k8s: every manifest is valid against the Kubernetes schemas (kubernetes-validate ships them, so
this runs offline), and the manifests agree with each other and with the code: probes on the gRPC port,
env that names existing ConfigMap and Secret keys and real settings, Services that select their
Deployment, and addresses that resolve to a Service."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError
from pydantic_settings import BaseSettings

from shared import settings as settings_module
from shared.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
#: the oldest Kubernetes the manifests are for (grpc probes, the preStop sleep action on by default) and the newest
#: whose schemas kubernetes-validate ships
VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
#: the metrics port of each service (946x, README "Operating")
METRICS = {"subscription": 9461, "billing": 9462, "entitlement": 9463, "notification": 9464}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> list[dict[str, Any]]:
    return [d for p in manifest_files() for d in _docs(p)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in resources() if d["kind"] == kind}


def kustomization() -> dict[str, Any]:
    return _docs(K8S / "kustomization.yaml")[0]


def config() -> dict[str, str]:
    return of_kind("ConfigMap")["tenure-config"]["data"]


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def known_env() -> set[str]:
    """Every environment variable some settings class reads."""
    names = set()
    for cls in vars(settings_module).values():
        if isinstance(cls, type) and issubclass(cls, BaseSettings) and cls.model_config.get("env_prefix"):
            prefix = cls.model_config["env_prefix"]
            names |= {f"{prefix}{field}".upper() for field in cls.model_fields}
    return names


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def pod_specs() -> dict[str, dict[str, Any]]:
    out = {f"Deployment/{n}": d["spec"]["template"]["spec"] for n, d in of_kind("Deployment").items()}
    out |= {f"Job/{n}": d["spec"]["template"]["spec"] for n, d in of_kind("Job").items()}
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_is_valid_kubernetes(path, version):
    docs = _docs(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validation_catches_a_broken_manifest():
    deployment = copy.deepcopy(of_kind("Deployment")["billing"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"grpc": {"port": 50052}}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    deployment = copy.deepcopy(of_kind("Deployment")["billing"])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomize_applies_every_manifest_but_the_example_secrets():
    k = kustomization()
    listed = set(k["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk
    assert not any(
        d["kind"] == "Secret" for name in listed for d in _docs(K8S / name)
    )  # real ones via kubectl
    assert k["namespace"] == "tenure"
    assert {i["name"] for i in k["images"]} == {"tenure"}
    for spec in pod_specs().values():
        assert {c["image"] for c in containers(spec)} == {"tenure"}  # the image kustomize sets


def test_everything_is_in_the_tenure_namespace():
    assert set(of_kind("Namespace")) == {"tenure"}
    for d in resources():
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "tenure", d["metadata"]["name"]


def test_each_service_is_a_deployment_with_replicas_probes_resources_and_metrics():
    deployments = of_kind("Deployment")
    assert set(deployments) == set(SETTINGS)
    cfg = config()
    for name, cls in SETTINGS.items():
        d = deployments[name]
        assert d["spec"]["replicas"] >= 2
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = d["spec"]["template"]
        (c,) = pod["spec"]["containers"]
        assert c["command"] == ["python", "-m", f"services.{name}"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        grpc_port = port_of(cls.model_fields["addr"].default)
        # listens on every interface of the pod, on the port the README and the probes use
        assert cfg[f"TENURE_{name.upper()}_ADDR"] == f"0.0.0.0:{grpc_port}"
        assert ports["grpc"] == grpc_port
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert c[probe]["grpc"]["port"] == grpc_port, (name, probe)
            assert c[probe]["grpc"].get("service", "") == ""  # the server's overall health
        assert c["livenessProbe"]["failureThreshold"] >= 2
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, kind)
        metrics = METRICS[name]
        assert port_of(cls.model_fields["metrics_addr"].default) == metrics
        assert cfg[f"TENURE_{name.upper()}_METRICS_ADDR"] == f"0.0.0.0:{metrics}"
        assert ports["metrics"] == metrics
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(metrics)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_services_select_their_deployment_and_name_its_ports():
    deployments, services = of_kind("Deployment"), of_kind("Service")
    assert set(services) == set(deployments)
    for name, svc in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = svc["spec"]["selector"]
        assert selector and selector.items() <= labels.items(), name
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # no other Deployment's pods match
        for other, d in deployments.items():
            if other != name:
                assert not selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        container_ports = {
            p["name"]: p["containerPort"]
            for p in deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in container_ports, (name, p)
            assert p["port"] == container_ports[p["targetPort"]]


def test_each_service_has_a_disruption_budget_that_selects_it():
    deployments, budgets = of_kind("Deployment"), of_kind("PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, pdb in budgets.items():
        assert pdb["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert 0 < pdb["spec"]["minAvailable"] < deployments[name]["spec"]["replicas"]


def test_addresses_in_the_config_reach_a_service_by_its_dns_name():
    services = of_kind("Service")
    cfg = config()
    checked = 0
    for key, value in cfg.items():
        if not (key.endswith("_ADDR") or key.endswith("_EVENT_SUBSCRIBERS")) or value.startswith("0.0.0.0:"):
            continue
        for addr in filter(None, value.split(",")):
            host, port = addr.rsplit(":", 1)
            assert host in services, f"{key}: {host} is no Service"
            assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, key
            assert "127.0.0.1" not in addr and "localhost" not in addr
            checked += 1
    assert checked >= 10
    # every address a service calls out to is set (the defaults point at 127.0.0.1, another pod's loopback)
    for name, cls in SETTINGS.items():
        for field, info in cls.model_fields.items():
            if (field.endswith("_addr") and field != "metrics_addr") or field == "addr":
                assert f"TENURE_{name.upper()}_{field.upper()}" in cfg, (name, field)
            if field == "event_subscribers" and info.default:
                assert f"TENURE_{name.upper()}_EVENT_SUBSCRIBERS" in cfg, name


def test_env_names_existing_config_and_secret_keys_and_real_settings():
    configmaps, secrets = of_kind("ConfigMap"), of_kind("Secret")
    known = known_env()
    for key in config():
        assert key in known, f"ConfigMap key {key} is not a setting"
    for where, spec in pod_specs().items():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in containers(spec):
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, where
            for env in c.get("env", []):
                assert env["name"] in known, f"{where}: {env['name']} is not a setting"
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    secret = secrets[ref["secretKeyRef"]["name"]]
                    assert ref["secretKeyRef"]["key"] in secret["stringData"], (where, env["name"])
                if "configMapKeyRef" in ref:
                    cm = configmaps[ref["configMapKeyRef"]["name"]]
                    assert ref["configMapKeyRef"]["key"] in cm["data"], (where, env["name"])
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes, (where, mount)
        for v in volumes.values():
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, (where, v)


def test_database_urls_and_the_signing_key_come_from_secrets():
    secrets = of_kind("Secret")
    key_file = config()["TENURE_AUTH_SIGNING_KEY_FILE"]
    for spec in pod_specs().values():
        for c in containers(spec):
            env = {e["name"]: e for e in c.get("env", [])}
            # a service reads its own database; the migration Job all four
            names = (
                c["command"][3:] if c["command"][2] == "services.migrate" else [c["command"][2].split(".")[1]]
            )
            assert names and set(names) <= set(SETTINGS)
            if c["command"][2] == "services.migrate":
                assert sorted(names) == sorted(SETTINGS)
            for n in names:
                ref = env[f"TENURE_{n.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                assert secrets[ref["name"]]["stringData"][ref["key"]].startswith("postgresql+psycopg://")
            # the key file lies in a mounted Secret that holds that key
            volumes = {v["name"]: v for v in spec["volumes"]}
            (mount,) = [m for m in c["volumeMounts"] if key_file.startswith(m["mountPath"] + "/")]
            secret = volumes[mount["name"]]["secret"]["secretName"]
            assert key_file.removeprefix(mount["mountPath"] + "/") in secrets[secret]["stringData"]
            assert mount["readOnly"] is True


def test_the_migration_job_runs_the_migrate_command_once():
    (job,) = of_kind("Job").values()
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["command"][:3] == ["python", "-m", "services.migrate"]
    assert importlib.util.find_spec("services.migrate") is not None
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}


def test_the_image_exposes_every_port_the_manifests_use():
    exposed = set(map(int, re.search(r"^EXPOSE (.*)$", (ROOT / "Dockerfile").read_text(), re.M)[1].split()))
    for d in of_kind("Deployment").values():
        for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]:
            assert p["containerPort"] in exposed
