"""docker-compose.yml is valid Compose and agrees with the settings (no Docker engine runs here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from shared.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[3]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification_schema():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    out = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_service_exists_and_ports_match_settings():
    services = compose()["services"]
    for name, cls in SETTINGS.items():
        assert name in services, name
        svc = services[name]
        default_port = cls.model_fields["addr"].default.rsplit(":", 1)[1]
        env = svc["environment"]
        assert env[f"TENURE_{name.upper()}_ADDR"] == f"0.0.0.0:{default_port}"
        assert f"{default_port}:{default_port}" in svc["ports"]
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert default_port in " ".join(svc["healthcheck"]["test"])
        # each service has its own database
        assert env[f"TENURE_{name.upper()}_DATABASE_URL"].endswith(f"/tenure_{name}")
        for key in env:
            if key.startswith(f"TENURE_{name.upper()}_"):
                field = key.removeprefix(f"TENURE_{name.upper()}_").lower()
                assert field in cls.model_fields, f"{key} is not a setting of {name}"
    assert services["notification"]["environment"]["TENURE_NOTIFICATION_SMTP_HOST"] == "mailpit"
    assert services["migrate"]["command"][:3] == ["python", "-m", "services.migrate"]


def test_every_compose_database_is_created_by_the_init_script():
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    for name in SETTINGS:
        assert f"CREATE DATABASE tenure_{name} " in init


def test_nats_runs_with_jetstream_and_every_service_uses_it():
    services = compose()["services"]
    nats = services["nats"]
    assert "-js" in nats["command"]
    assert "4222:4222" in nats["ports"]
    assert "healthcheck" in nats
    for name in [*SETTINGS, "migrate"]:
        svc = services[name]
        assert svc["environment"]["TENURE_NATS_URL"] == "nats://nats:4222", name
        assert svc["depends_on"]["nats"]["condition"] == "service_healthy", name


def test_two_copies_of_every_service_answer_to_its_name():
    services = compose()["services"]
    for name, cls in SETTINGS.items():
        first, second = services[name], services[f"{name}-2"]
        # the same program, settings, database and health check...
        for key in ("command", "environment", "depends_on", "healthcheck", "image"):
            assert second[key] == first[key], (name, key)
        # ...reachable inside the stack under the service's DNS name; only the first publishes ports
        assert second["networks"]["default"]["aliases"] == [name]
        assert second["ports"] == []
        metrics = cls.model_fields["metrics_addr"].default.rsplit(":", 1)[1]
        assert first["environment"][f"TENURE_{name.upper()}_METRICS_ADDR"] == f"0.0.0.0:{metrics}"
        assert f"{metrics}:{metrics}" in first["ports"]
    copies = [n for n in services if n.rsplit("-", 1)[0] in SETTINGS]
    assert len(copies) == 2 * len(SETTINGS)


def test_addresses_between_services_use_service_names():
    services = compose()["services"]
    names = set(services)
    for name in SETTINGS:
        for key, value in services[name]["environment"].items():
            if (
                key.endswith("_ADDR")
                and not value.startswith("0.0.0.0:")
                or key.endswith("_EVENT_SUBSCRIBERS")
            ):
                for addr in filter(None, str(value).split(",")):
                    assert addr.rsplit(":", 1)[0] in names, (name, key, addr)
