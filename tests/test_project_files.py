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


def _is_app(service: dict) -> bool:
    """A service running the project's image (the Dockerfile's last stage)."""
    build = service.get("build")
    return build is not None and (isinstance(build, str) or "target" not in build)


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


def _registered_server_variables() -> dict[str, set[str]]:
    """Server name -> the variables `add_database_server` names in compose's commands."""
    registered = {}
    for service in compose()["services"].values():
        for command in " ".join(_command_words(service)).split("&&"):
            words = command.split()
            if "add_database_server" in words:
                name = words[words.index("add_database_server") + 1]
                options = ("--url-env", "--admin-url-env")
                registered[name] = {words[i + 1] for i, w in enumerate(words) if w in options}
    return registered


def test_compose_sets_only_variables_the_settings_read():
    # A database server's URL variables are read by name, as its registration says.
    server_vars = set().union(*_registered_server_variables().values())
    for name, service in compose()["services"].items():
        if not _is_app(service):
            continue
        env = service["environment"]
        unknown = set(env) - ENV_VARS - server_vars
        assert not unknown, f"{name} sets unknown variables {unknown}"


def test_compose_commands_exist_in_the_project():
    commands = get_commands()
    for service in compose()["services"].values():
        if not _is_app(service):
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


# --- PgBouncer in front of PostgreSQL -----------------------------------------------------
def _url(value: str) -> tuple[str, int]:
    host, port = value.rsplit("@", 1)[1].split("/")[0].split(":")
    return host, int(port)


def test_compose_runs_pgbouncer_from_the_dockerfiles_stage_in_front_of_postgres():
    services = compose()["services"]
    pooler = services["pgbouncer"]
    assert pooler["build"] == {"context": ".", "target": "pgbouncer"}
    assert re.search(r"^FROM debian:\S+ AS pgbouncer$", (BASE_DIR / "Dockerfile").read_text(), re.M)
    assert "pgbouncer" in (BASE_DIR / "Dockerfile").read_text().split("AS pgbouncer")[1]
    env = pooler["environment"]
    assert (env["PGBOUNCER_SERVER_HOST"], env["PGBOUNCER_SERVER_PORT"]) == ("db", "5432")
    assert pooler["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    # Every variable of the template has a value: the service's or the shipped default.
    template = (BASE_DIR / "config" / "pgbouncer" / "pgbouncer.ini.template").read_text()
    defaults = (BASE_DIR / "config" / "pgbouncer" / "defaults.env").read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    assert variables <= set(env) | set(re.findall(r"^([A-Z_]+)=", defaults, re.M))
    assert {"PGBOUNCER_AUTH_USER", "PGBOUNCER_AUTH_PASSWORD"} <= set(env)


def test_compose_sends_tenant_queries_through_the_pooler_and_ddl_to_postgres():
    services = compose()["services"]
    for name in ("migrate", "api", "logstream"):
        env = services[name]["environment"]
        assert _url(env["TENANT_DATABASE_URL"]) == ("pgbouncer", 6432), name
        assert _url(env["TENANT_DATABASE_ADMIN_URL"]) == ("db", 5432), name
        assert _url(env["DATABASE_URL"]) == ("db", 5432), name  # the main database: direct


def test_compose_places_tenants_on_two_servers_each_behind_its_own_pooler():
    services = compose()["services"]
    registered = _registered_server_variables()
    assert set(registered) == {"db2"}
    assert "--if-missing" in " ".join(_command_words(services["migrate"]))  # runs every start
    pooler = services["pgbouncer2"]
    assert pooler["build"] == services["pgbouncer"]["build"]
    assert pooler["environment"]["PGBOUNCER_SERVER_HOST"] == "db2"
    assert services["db2"]["image"] == services["db"]["image"]
    assert services["migrate"]["depends_on"]["pgbouncer2"]["condition"] == "service_healthy"
    for name in ("migrate", "api", "logstream"):
        env = services[name]["environment"]
        assert registered["db2"] <= set(env), name
        assert _url(env["TENANT_DATABASE_URL_DB2"]) == ("pgbouncer2", 6432), name
        assert _url(env["TENANT_DATABASE_ADMIN_URL_DB2"]) == ("db2", 5432), name
    # The same limits as the first pooler: workers x cap fit both.
    assert pooler["environment"] == {
        **services["pgbouncer"]["environment"],
        "PGBOUNCER_SERVER_HOST": "db2",
    }


def test_compose_pooler_limits_hold_the_app_and_postgres():
    """The sizing rule (README, "Sizing connections") with compose's numbers."""
    services = compose()["services"]
    pooler, app = services["pgbouncer"]["environment"], services["api"]["environment"]
    workers = int(app["WEB_CONCURRENCY"])
    assert services["api"]["command"][services["api"]["command"].index("--workers") + 1] == str(
        workers
    )
    assert int(app["APP_REPLICAS"]) == services["api"]["deploy"]["replicas"]
    clients = int(app["APP_REPLICAS"]) * workers * int(app["TENANT_MAX_OPEN_CONNECTIONS"])
    assert clients + 16 <= int(pooler["PGBOUNCER_MAX_CLIENT_CONN"])  # + the log stream's
    # PostgreSQL's default max_connections (compose does not change it), 3 reserved.
    assert "max_connections" not in str(services["db"])
    direct = clients // int(app["TENANT_MAX_OPEN_CONNECTIONS"]) + 2 + 4  # main db, stream, DDL
    assert int(pooler["PGBOUNCER_MAX_USER_CONNECTIONS"]) + direct <= 100 - 3
