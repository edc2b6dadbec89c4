"""The deployment files and the documented settings agree with the code."""

import ipaddress
import re

import pytest
import yaml
from django.core.management import get_commands
from django.utils.module_loading import import_string

from tests.helpers import BASE_DIR

SETTINGS_SOURCE = (BASE_DIR / "config" / "settings.py").read_text()
ENV_VARS = set(re.findall(r'env\.[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS_SOURCE))


def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def _command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return command if isinstance(command, list) else command.split()


def test_settings_read_the_environment():
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_SECRET", "TENANT_DEFAULT"} <= ENV_VARS


@pytest.mark.parametrize("name", sorted(ENV_VARS))
def test_every_setting_is_documented_in_env_example_and_readme(name):
    assert re.search(rf"^#? ?{name}=", (BASE_DIR / ".env.example").read_text(), re.M), name
    assert f"`{name}`" in (BASE_DIR / "README.md").read_text(), name


def test_compose_services_and_healthchecks():
    services = compose()["services"]
    assert {"db", "redis", "migrate", "api", "logstream"} <= set(services)
    assert "healthcheck" in services["db"]
    assert "healthcheck" in services["redis"]
    assert services["api"]["deploy"]["replicas"] >= 2


def test_compose_sets_only_variables_the_settings_read():
    for name, service in compose()["services"].items():
        if service.get("build") is None:
            continue
        env = service["environment"]
        unknown = set(env) - ENV_VARS
        assert not unknown, f"{name} sets unknown variables {unknown}"


def test_compose_commands_exist_in_the_project():
    commands = get_commands()
    for service in compose()["services"].values():
        if service.get("build") is None:
            continue
        words = " ".join(_command_words(service)).replace("&&", " ").split()
        for index, word in enumerate(words):
            if word == "manage.py":
                assert words[index + 1] in commands, words[index + 1]
            if re.fullmatch(r"config\.(wsgi|asgi):application", word):
                module, attr = word.split(":")
                assert import_string(f"{module}.{attr}") is not None


def test_dockerfile_runs_as_non_root_with_a_healthcheck():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile
    assert "config.wsgi:application" in dockerfile


def test_the_image_never_receives_local_data_keys_or_secrets():
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {"var/", ".env", ".venv/"} <= set(ignored)


def test_production_http_commands_keep_one_access_log_the_projects():
    """gunicorn's own access log would write every query string as the client sent it
    (the project's redacts sensitive values) and a second line per request."""
    from bench.servers import gunicorn_argv

    commands = [
        (BASE_DIR / "Dockerfile").read_text(),
        " ".join(compose()["services"]["api"]["command"]),
        " ".join(gunicorn_argv("gunicorn", 8000, 2)),
    ]
    assert all("gunicorn" in command for command in commands)
    assert not [command for command in commands if "access-log" in command]


def test_compose_publishes_one_port_through_nginx_only():
    services = compose()["services"]
    assert services["nginx"]["image"].startswith("nginx:")
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"nginx": ["8000:8000"]}
    assert {"api", "logstream"} <= set(services["nginx"]["depends_on"])


def test_compose_nginx_templates_exist_in_the_repository():
    nginx = compose()["services"]["nginx"]
    templates = [volume.split(":") for volume in nginx["volumes"]]
    assert templates
    for source, target, *_ in templates:
        assert target.startswith("/etc/nginx/templates/") and target.endswith(".template")
        template = BASE_DIR / source
        assert template.is_file(), source
        # The image renders only the variables set on the service.
        variables = set(re.findall(r"\$\{([A-Z_]+)\}", template.read_text()))
        assert variables <= set(nginx["environment"]), source


def test_compose_trusts_forwarded_addresses_from_its_own_network_only():
    document = compose()
    subnets = [
        ipaddress.ip_network(pool["subnet"])
        for pool in document["networks"]["default"]["ipam"]["config"]
    ]
    for name in ("api", "logstream"):
        env = document["services"][name]["environment"]
        trusted = [ipaddress.ip_network(value) for value in env["TRUSTED_PROXY_IPS"].split(",")]
        assert all(any(subnet.subnet_of(net) for net in trusted) for subnet in subnets), name
        assert all(any(net.subnet_of(subnet) for subnet in subnets) for net in trusted), name


def test_compose_nginx_and_the_app_share_one_body_limit():
    services = compose()["services"]
    limit = services["nginx"]["environment"]["MAX_REQUEST_SIZE_BYTES"]
    assert limit == services["api"]["environment"]["MAX_REQUEST_SIZE_BYTES"]
    assert limit == services["logstream"]["environment"]["MAX_REQUEST_SIZE_BYTES"]
