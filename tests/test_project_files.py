"""The deployment files and the documented settings agree with the code."""

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
