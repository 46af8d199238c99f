"""The README's "Add it to your Wagtail site" steps, as the README writes them, on a brand-new
``wagtail start`` site: the site migrates, checks clean and renders a personalized block.

The steps are read from the README's marked blocks (``<!-- install:apps -->`` and so on), so an
app, middleware or URL the add-on needs but the README forgets fails here first. One site is
generated for the module (``wagtail start`` and ``migrate`` take some seconds); everything runs in
subprocesses with the generated site's own settings, never this repository's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DESKTOP_UA, MOBILE_UA

README = Path(__file__).resolve().parent.parent / "README.md"
WAGTAIL = Path(sys.executable).parent / "wagtail"
PROJECT = "installsite"
CATCH_ALL = 'path("", include(wagtail_urls))'
MARKED_BLOCK_RE = re.compile(r"^<!-- install:([\w-]+) -->\n```\w*\n(.*?)^```$", re.M | re.S)
#: The first line of a file snippet names the file: ``# home/models.py`` or ``{# home/... #}``.
FILE_COMMENT_RE = re.compile(r"^(?:#|\{#)\s*(\S+?)\s*(?:#\})?$")
TIMEOUT = 180

#: Run by ``manage.py shell -c``: a live page with a personalized hero (a mobile variant and the
#: default), fetched as a phone and as a desktop browser.
PAGE_SCRIPT = """
import json

from django.test import Client
from django.urls import resolve, reverse
from wagtail.models import Site

from home.models import LandingPage
from microadjust_cms.rendering.block_ids import as_saved

def hero(heading):
    return {"heading": heading, "text": "Personalized on the server."}

raw = [{"type": "personalized_hero", "value": {
    "block_id": "install-hero", "triggers": {}, "default": hero("Welcome, everybody"),
    "variants": [{"name": "mobile", "segment": "", "content": hero("Welcome, phone reader"),
                  "condition": {"signal": "device", "op": "eq", "value": "mobile"}}]}}]
home = Site.objects.get(is_default_site=True).root_page
page = home.add_child(instance=LandingPage(
    title="Install check", slug="install-check", body=as_saved(LandingPage.body.field, raw)))
page.save_revision().publish()
result = {"collect_namespace": resolve(reverse("microadjust:collect")).namespace}
# A returning visitor outside the global holdout (5 % of visitors get defaults everywhere): a
# fresh random id would see the defaults one run in twenty.
from microadjust_cms.conf import get_setting
from microadjust_cms.experiments.runtime import in_holdout
from microadjust_cms.visitor.context import visitor_cookie_signer
visitor = next(v for v in (f"{i:032x}" for i in range(100)) if not in_holdout(v))
for name, agent in (("mobile", MOBILE_UA), ("desktop", DESKTOP_UA)):
    client = Client(HTTP_USER_AGENT=agent)
    client.cookies[get_setting("COOKIE_NAME")] = visitor_cookie_signer().sign(visitor)
    response = client.get(page.url)
    result[name] = {"status": response.status_code, "html": response.content.decode()}
print("INSTALL-RESULT " + json.dumps(result))
"""


def readme_steps() -> dict[str, str]:
    steps = dict(MARKED_BLOCK_RE.findall(README.read_text()))
    missing = {"apps", "middleware", "urls", "block", "template", "block-template"} - set(steps)
    assert not missing, f"README lacks the marked install blocks {sorted(missing)}"
    return steps


def split_file_snippet(snippet: str) -> tuple[str, str]:
    """(the file the snippet's first line names, the rest)."""
    first, _, rest = snippet.partition("\n")
    match = FILE_COMMENT_RE.match(first.strip())
    assert match, f"an install snippet must start with the file it goes in: {first!r}"
    return match.group(1), rest


def start(site: Path, *args: str, settings: str = "dev") -> subprocess.Popen:
    """``manage.py <args>`` in the generated site, started (each takes seconds: Wagtail's
    imports and checks, so independent commands run side by side)."""
    env = {**os.environ, "PYTHONPATH": str(site), "DJANGO_SETTINGS_MODULE": f"{PROJECT}.settings.{settings}"}
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=site, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run(site: Path, *args: str, settings: str = "dev") -> subprocess.CompletedProcess:
    return finish(start(site, *args, settings=settings))


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def apply_readme(site: Path, steps: dict[str, str]) -> None:
    """Only what the README tells a site owner to do. The generated dev settings already allow
    the test client (ALLOWED_HOSTS = ["*"], a SECRET_KEY, SQLite in the site directory), so
    nothing else is changed."""
    settings = site / PROJECT / "settings" / "base.py"
    # "after the list": both lists are defined in base.py, so its end is after both.
    settings.write_text(settings.read_text() + "\n" + steps["apps"] + "\n" + steps["middleware"])

    urls = site / PROJECT / "urls.py"
    lines = urls.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.strip().startswith(CATCH_ALL)]
    assert len(at) == 1, f"one catch-all expected in the generated urls.py, found {len(at)}"
    indent = lines[at[0]][:len(lines[at[0]]) - len(lines[at[0]].lstrip())]
    ours = [indent + line.strip() + "\n" for line in steps["urls"].splitlines()
            if line.strip() and not line.strip().startswith("#")]
    urls.write_text("".join(lines[:at[0]] + ours + lines[at[0]:]))

    models_path, models_code = split_file_snippet(steps["block"])
    models = site / models_path
    models.write_text(models.read_text() + "\n\n" + models_code)  # next to the generated HomePage
    for step in ("template", "block-template"):
        path, text = split_file_snippet(steps[step])
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    steps = readme_steps()
    site = tmp_path_factory.mktemp("wagtail-site") / "site"
    site.mkdir()
    ok(subprocess.run([str(WAGTAIL), "start", PROJECT, str(site)], capture_output=True, text=True,
                      timeout=TIMEOUT))
    apply_readme(site, steps)
    ok(run(site, "makemigrations", "home"))
    ok(run(site, "migrate", "--no-input"))
    # The reported installation: the same site with "waffle" left out (test_without_waffle_*).
    (site / PROJECT / "settings" / "nowaffle.py").write_text(
        'from .dev import *  # noqa: F403\n\n'
        'INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "waffle"]  # noqa: F405\n')
    return site


def test_readme_install_renders_a_personalized_block(site):
    script = f"MOBILE_UA = {MOBILE_UA!r}\nDESKTOP_UA = {DESKTOP_UA!r}\n" + PAGE_SCRIPT
    check, shell = start(site, "check"), start(site, "shell", "-c", script)
    check, output = ok(finish(check)), ok(finish(shell)).stdout
    assert "microadjust_cms." not in check.stdout + check.stderr  # no error, no warning

    marker = [line for line in output.splitlines() if line.startswith("INSTALL-RESULT ")]
    assert marker, output
    result = json.loads(marker[0].removeprefix("INSTALL-RESULT "))
    # The URL include sits before Wagtail's catch-all, or the catch-all would answer it.
    assert result["collect_namespace"] == "microadjust"
    mobile, desktop = result["mobile"], result["desktop"]
    assert mobile["status"] == desktop["status"] == 200
    wrapped = r'<div data-ma-block="install-hero" data-ma-variant="{}"[^>]*>\s*<section class="hero">\s*<h2>{}</h2>'
    assert re.search(wrapped.format("mobile", "Welcome, phone reader"), mobile["html"]), mobile["html"]
    assert re.search(wrapped.format("default", "Welcome, everybody"), desktop["html"]), desktop["html"]
    assert "Welcome, phone reader" not in desktop["html"]
    assert 'id="microadjust-config"' in mobile["html"]  # the tracker, from the README's template


def test_without_waffle_check_and_migrate_name_it_instead_of_a_traceback(site):
    """The reported installation: ``migrate`` crashed in ``ready()`` with ImproperlyConfigured."""
    running = {command: start(site, command, settings="nowaffle") for command in ("check", "migrate")}
    for command, process in running.items():
        result = finish(process)
        output = result.stdout + result.stderr
        assert result.returncode != 0, (command, output)
        assert "microadjust_cms.E009" in result.stderr and "waffle" in result.stderr, (command, output)
        assert "Traceback" not in output, (command, output)


def test_waffle_middleware_and_flag_model_are_checked(settings):
    from django.core.checks import run_checks

    from microadjust_cms.experiments.runtime import connect_signals

    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "waffle.middleware.WaffleMiddleware"]
    assert "microadjust_cms.W004" in {m.id for m in run_checks()}
    settings.WAFFLE_FLAG_MODEL = "nowhere.Flag"  # a swapped flag model whose app is missing
    connect_signals()  # what ready() calls: no ImproperlyConfigured, the check reports it
    assert "microadjust_cms.E010" in {m.id for m in run_checks()}
