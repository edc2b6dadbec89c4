"""The staff log viewer in a real browser: headless Chromium (Debian's chromium and
chromium-driver packages, which .ci/run installs) against a daphne process.

Staff log in to the admin, open the viewer from the admin index, a request is made, and
its access line appears on the page over the WebSocket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.helpers import BASE_DIR, free_port, needs_component

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
STAFF_PASSWORD = "Viewer-S3cret-pw"

pytestmark = needs_component(
    "chromium",
    available=Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
    install="apt-get install chromium chromium-driver; .ci/run installs them",
)


def _manage(env: dict, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One daphne process on a temporary SQLite main database, with a staff user."""
    tmp = tmp_path_factory.mktemp("log-viewer")
    tag = f"viewer{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TENANT_DEFAULT")},
        "TESTING": "1",
        "TEST_RUN_TAG": tag,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SUPERUSER_PASSWORD": STAFF_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    _manage(env, "migrate", "--noinput", "--verbosity", "0")
    _manage(env, "createsuperuser", "--noinput", "--username", "ops",
            "--email", "ops@platform.test")  # fmt: skip
    port = free_port()
    log = tmp / "daphne.log"
    process = subprocess.Popen(
        [str(BASE_DIR / ".venv" / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(port),
         "config.asgi:application"],
        cwd=BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"daphne did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(BASE_DIR / "var" / "test-tenants" / tag, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_staff_sees_a_request_of_theirs_appear_in_the_live_log_viewer(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(f"{server}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.url_to_be(f"{server}/admin/"))

    # The viewer is reachable from the admin index.
    browser.find_element(By.CSS_SELECTOR, "a[href='/admin/logs/']").click()
    wait.until(ec.url_to_be(f"{server}/admin/logs/"))
    wait.until(lambda d: "connected" in d.find_element(By.ID, "log-status").get_attribute(
        "class").split())  # fmt: skip

    probe = f"probe-{uuid.uuid4().hex}"
    urllib.request.urlopen(f"{server}/health?{probe}=1", timeout=5)  # noqa: S310
    wait.until(lambda d: probe in d.find_element(By.ID, "log-rows").text)
    row_text = browser.find_element(By.ID, "log-rows").text
    assert f"GET /health?{probe}=1 200" in row_text
    assert "logstream.access" in row_text
    # The page loads nothing from outside this server.
    for element in browser.find_elements(By.CSS_SELECTOR, "script[src], link[href]"):
        url = element.get_attribute("src") or element.get_attribute("href")
        assert url.startswith(server), url
