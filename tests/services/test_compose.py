"""docker-compose.yml agrees with the settings classes, the resource definition and itself."""

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from pydantic_core import PydanticUndefined

from shared.resources import load_resources
from shared.settings import DispatcherSettings, FetcherSettings, LoaderSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = {"dispatcher": DispatcherSettings, "fetcher": FetcherSettings, "loader": LoaderSettings}


def env_of(name):
    return {k: str(v) for k, v in COMPOSE["services"][name].get("environment", {}).items()}


def required_vars(settings_cls):
    return {
        name.upper()
        for name, f in settings_cls.model_fields.items()
        if f.default is PydanticUndefined and f.default_factory is None
    }


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_required_variable_is_set_and_validates(service, monkeypatch):
    env = env_of(service)
    missing = required_vars(SERVICES[service]) - set(env)
    assert not missing, f"{service} lacks {missing}"
    for key in list(env):
        monkeypatch.setenv(key, env[key])
    SERVICES[service]()  # validates exactly as the container would at start-up


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_variable_set_is_one_the_service_reads(service):
    known = {n.upper() for n in SERVICES[service].model_fields}
    known |= {"PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
    assert set(env_of(service)) <= known, set(env_of(service)) - known


def _port_of_command(service, pattern):
    match = re.search(pattern, COMPOSE["services"][service]["command"])
    assert match, f"no port in {service}'s command"
    return int(match.group(1))


def test_emulator_hosts_and_ports_agree():
    env = env_of("fetcher")
    pubsub_port = _port_of_command("pubsub", r"host-port=[\d.]+:(\d+)")
    assert env["PUBSUB_EMULATOR_HOST"] == f"pubsub:{pubsub_port}"
    gcs = urlparse(env["STORAGE_EMULATOR_HOST"])
    assert (gcs.hostname, gcs.port) == ("gcs", _port_of_command("gcs", r"-port (\d+)"))
    bq = urlparse(env["BIGQUERY_API_ENDPOINT"])
    assert (bq.hostname, bq.port) == ("bigquery", _port_of_command("bigquery", r"--port=(\d+)"))
    dome = urlparse(env["DOME_API_BASE_URL"])
    assert (dome.hostname, dome.port) == ("dome", _port_of_command("dome", r"--port (\d+)"))


def test_bootstrap_pushes_to_the_services_and_names_the_bucket_they_use():
    command = COMPOSE["services"]["bootstrap"]["command"]
    for service in ("fetcher", "loader"):
        assert f"--push {service}=http://{service}:8080" in command
    assert f"--bucket {env_of('fetcher')['GCS_BUCKET']}" in command
    pushed = {s.push_service for s in load_resources().subscriptions if s.push_service}
    assert pushed == {"fetcher", "loader"}


def test_dispatcher_reads_the_traders_table_of_the_dataset_the_loader_writes():
    project, dataset, _ = env_of("dispatcher")["TRADERS_TABLE"].split(".")
    assert (project, dataset) == (env_of("loader")["GCP_PROJECT"], env_of("loader")["BQ_DATASET"])
    assert env_of("loader")["BQ_DATASET"] == load_resources().dataset


def test_the_compose_bootstrap_seeds_traders_from_the_simulator_listing(tmp_path):
    from emulators.bootstrap import read_traders
    from emulators.dome.config import SimConfig
    from emulators.dome.server import run_simulator

    command = " ".join(COMPOSE["services"]["bootstrap"]["command"].split())
    url = command.split("--traders-from ")[1].split()[0]
    assert url.startswith("http://dome:8090/")
    with run_simulator(SimConfig(size=3, whale_trades=10)) as sim:
        listed = read_traders(url.replace("http://dome:8090", sim.root_url))
        assert listed == sim.state.universe.wallets() and len(listed) > 3
    wallets = tmp_path / "wallets.txt"
    wallets.write_text("# mine\n  0xABCDEF0000000000000000000000000000000001 \n\n")
    assert read_traders(str(wallets)) == ["0xabcdef0000000000000000000000000000000001"]
