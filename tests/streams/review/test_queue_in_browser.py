"""What a reviewer sees, in a real headless Chromium: the queue the review bridge made, in
priority order, and the first task it hands out (the most urgent) with the model's
prediction already selected.

The project is made by the bridge's own code (:class:`streams.review.bridge.TaskWriter`)
in the session's Label Studio; the browser logs in through the login page like a person.
Screenshots of both pages are saved in the test's ``tmp_path`` (the paths are printed;
``pytest -s`` shows them).

The browser is Debian's ``chromium`` (or ``$VIGIL_CHROMIUM``), driven by Playwright; no
browser is downloaded. Without one the test skips, and in CI (``CI`` set) it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config.settings import LabelStudioSettings
from streams.dev.label_studio import LocalLabelStudio
from streams.review.bridge import TaskWriter
from streams.review.label_studio_api import LabelStudioClient
from streams.review.projects import QUEUE_VIEW
from streams.review.tasks import decode_escalation
from tests.conftest import in_ci
from tests.streams.review.escalations import CLASSES, escalations

pytestmark = [pytest.mark.label_studio, pytest.mark.browser]

#: Environment variable naming the Chromium executable to drive.
CHROMIUM_ENV = "VIGIL_CHROMIUM"

#: Milliseconds Playwright waits for a page or an element (a loaded 2-core machine).
_WAIT_MS = 60_000

#: Milliseconds a loaded task is given to show its pre-annotation.
_SETTLE_MS = 10_000

#: Each row of the Data Manager's table as [column id, cell text] pairs, in column order.
_TABLE = """() => {
  const ids = [...document.querySelectorAll('.lsf-table-head .lsf-th')]
    .map(cell => cell.getAttribute('data-id'));
  return [...document.querySelectorAll('[data-testid=table-row]')].map(row =>
    [...row.querySelectorAll(':scope > .lsf-table__cell')]
      .map((cell, i) => [ids[i], cell.innerText.trim()]));
}"""


def _browser_unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"no headless browser in CI (CI={os.environ.get('CI')!r}): {reason}")
    pytest.skip(f"no headless browser: {reason}")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's ``Browser``) for this module."""
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured and not (Path(configured).is_file() and os.access(configured, os.X_OK)):
        _browser_unavailable(f"{CHROMIUM_ENV}={configured!r} is not an executable file")
    executable = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        _browser_unavailable(
            "no chromium on PATH: apt-get install -y --no-install-recommends chromium "
            f"(or set {CHROMIUM_ENV} to a Chromium executable)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _browser_unavailable(f"Playwright is not installed ({exc}): run `make venv`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def test_the_queue_lists_tasks_by_priority_and_hands_out_the_first_with_its_prediction_selected(
    label_studio: LocalLabelStudio, chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    started = time.monotonic()
    client = LabelStudioClient(label_studio.url, label_studio.token)
    settings = LabelStudioSettings.model_validate(
        {"project_title": f"browser {uuid.uuid4().hex[:8]} {{model_id}}"}
    )
    writer = TaskWriter(client, settings)
    records = escalations("fraud", 6)
    # The most urgent escalation comes last and from the model's next release: its task
    # must still come first and open pre-labelled.
    top = max(records, key=lambda r: r["priority"])
    newer = [{**top, "model_version": "8"}]
    writer.write([decode_escalation(r) for r in records if r is not top])
    writer.write([decode_escalation(r) for r in newer])
    project = writer.projects.project_for("fraud", "classification")
    (view,) = [v for v in client.views(project.id) if v["data"].get("title") == QUEUE_VIEW]
    task_of = client.find_tasks(project.id, "escalation_id", [r["escalation_id"] for r in records])
    by_priority = sorted(records, key=lambda r: r["priority"], reverse=True)
    expected_ids = [task_of[r["escalation_id"]] for r in by_priority]

    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(_WAIT_MS)
    page = context.new_page()
    try:
        # Log in through the login page, as a reviewer does.
        page.goto(f"{label_studio.url}/user/login/")
        page.fill("#email", label_studio.username)
        page.fill("#password", label_studio.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url)

        # The saved queue view: rows by priority, highest first.
        page.goto(f"{label_studio.url}/projects/{project.id}/data?tab={view['id']}")
        page.locator("[data-testid=table-row]").nth(len(records) - 1).wait_for()
        rows = [dict(cells) for cells in page.evaluate(_TABLE)]
        assert [int(row["tasks:id"]) for row in rows] == expected_ids
        assert [float(row["tasks:data.priority"]) for row in rows] == [
            r["priority"] for r in by_priority
        ]
        page.evaluate(
            "document.querySelector('.lsf-table-head [data-id=\"tasks:data.title\"]')"
            ".scrollIntoView({inline: 'start', block: 'nearest'})"
        )
        queue_png = tmp_path / "queue.png"
        page.screenshot(path=str(queue_png))

        # Work the queue as displayed: the first task handed out is the most urgent, with
        # the model's prediction already selected. ("Label All Tasks" itself goes by task
        # id in Label Studio Community, whatever the view's order.)
        page.get_by_role("button", name="Toggle open").click()
        with page.expect_request(lambda request: "id=next_task" in request.url):
            page.get_by_text("Label Tasks As Displayed", exact=True).click()
        page.wait_for_url("**labeling=1*")
        heading = page.locator(".lsf-main-view h3")
        heading.wait_for()
        assert heading.inner_text() == f"fraud · priority {top['priority']:.3f} · low_confidence"
        predicted = top["prediction"]["label"]
        choices = page.locator(".lsf-choices input[type=checkbox]")
        choices.first.wait_for()
        with contextlib.suppress(PlaywrightTimeoutError):  # the assertion below says what
            page.locator(".lsf-choices input:checked").first.wait_for(timeout=_SETTLE_MS)
        offered = choices.evaluate_all("inputs => inputs.map(input => [input.name, input.checked])")
        assert dict(offered) == {c: c == predicted for c in CLASSES}, (
            f"the model's prediction {predicted!r} should be the one choice selected"
        )
        task_png = tmp_path / "task.png"
        page.screenshot(path=str(task_png))
    finally:
        context.close()
    for png in (queue_png, task_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nscreenshots: {queue_png} {task_png} ({time.monotonic() - started:.1f} s)")
