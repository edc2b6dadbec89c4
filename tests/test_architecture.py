"""The design's own rules: layers import downward only (the import-linter contract in
pyproject.toml), one rule for signing secrets, and settings that refuse what no check
could report."""

import ast
import json
import os
import shutil
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from config.secret_strength import MIN_SECRET_LENGTH, is_weak_secret

ROOT = Path(__file__).resolve().parent.parent
STRONG = "Vq3Lm8Xz1Wc6Vb2Nr9Ty4Ud7Hs0Jk5Gf8Ae1Io6Ky3Mq9Np2Lr7Ts4Uv0Wx5Zb"


def _settings_in_production(**env) -> subprocess.CompletedProcess:
    """Import config.settings in a fresh interpreter with APP_ENV=production."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APP_", "SECRET", "JWT", "ALLOWED", "DEBUG", "CORS", "DJANGO"))
    }
    base.update(
        APP_ENV="production",
        DEBUG="false",
        ALLOWED_HOSTS="api.example.test",
        SECRET_KEY=STRONG,
        JWT_SECRET=STRONG[::-1],
    )
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_layers_import_downward_only():
    """The import-linter contract: no module imports a higher layer, function-level
    imports included."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency (pyproject.toml)"
    done = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x7" * 24,  # 48 characters
        "a" * 64,  # too few distinct characters
        "change-me-" + STRONG,
        "dev-insecure-secret-key-change-me-0123456789abcdef",
    ],
)
def test_weak_secrets_are_weak_by_the_one_rule(value):
    assert is_weak_secret(value)


def test_a_random_hex_secret_of_openssl_rand_is_strong():
    assert len("ab" * 32) >= MIN_SECRET_LENGTH
    assert not is_weak_secret(STRONG)


def test_production_refuses_to_start_with_a_secret_the_deploy_check_calls_weak():
    short = STRONG[: MIN_SECRET_LENGTH - 1]
    with override_settings(SECRET_KEY=short):
        ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "config.E001" in ids
    done = _settings_in_production(SECRET_KEY=short)
    assert done.returncode != 0
    assert "SECRET_KEY is missing or weak" in done.stderr


def test_production_starts_with_secrets_the_deploy_check_accepts():
    with override_settings(SECRET_KEY=STRONG):
        ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "config.E001" not in ids
    done = _settings_in_production()
    assert done.returncode == 0, done.stderr


def test_settings_refuse_cors_for_every_origin_with_credentials():
    done = _settings_in_production(CORS_ALLOWED_ORIGINS="*", CORS_CREDENTIALS="true")
    assert done.returncode != 0
    assert "CORS_ALLOWED_ORIGINS='*' together with CORS_CREDENTIALS=true" in done.stderr


def _layered_modules() -> set[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return {
        name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")
    }


@pytest.mark.parametrize("package", ["config", "tenants"])
def test_every_module_of_the_split_packages_has_a_layer(package):
    """config and tenants span several layers: a new module must be placed in one, or the
    contract would not see its imports."""
    layered = _layered_modules()
    modules = {
        f"{package}.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / package).iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert modules - layered == set()


def test_a_services_validation_error_leaves_as_the_envelope_with_details():
    from django.core.exceptions import ValidationError
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    class Raising(APIView):
        authentication_classes = []
        permission_classes = []

        def get(self, request):
            raise ValidationError({"slug": ["Tenant 'acme' already exists"]})

    class RaisingMessage(Raising):
        def get(self, request):
            raise ValidationError("A tenant must keep at least one admin")

    request = APIRequestFactory().get("/api/x")
    response = Raising.as_view()(request)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert json.loads(response.content) == {
        "status": HTTPStatus.BAD_REQUEST,
        "error": "Bad Request",
        "message": "Validation failed",
        "details": {"slug": ["Tenant 'acme' already exists"]},
    }
    body = json.loads(RaisingMessage.as_view()(request).content)
    assert body["details"] == {"non_field_errors": ["A tenant must keep at least one admin"]}


def test_views_never_catch_to_reshape_an_error():
    """Errors leave through the one exception handler (config.errors): no view catches an
    exception to raise another in its place."""
    offenders = []
    for path in sorted(ROOT.glob("*/views.py")):
        tree = ast.parse(path.read_text())
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ExceptHandler)
            and any(isinstance(inner, ast.Raise) and inner.exc for inner in ast.walk(node))
        ]
    assert offenders == []
