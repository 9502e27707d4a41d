"""The local Label Studio (streams/dev/label_studio.py): found, started headless on the port it
really serves, answering as its own admin user only, isolated from the caller's environment."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streams.dev.label_studio import (
    LabelStudioMissingError,
    LocalLabelStudio,
    label_studio_executable,
)


def _get(url: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_a_missing_executable_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIL_LABEL_STUDIO", str(tmp_path / "no-such-label-studio"))
    with pytest.raises(LabelStudioMissingError, match="VIGIL_LABEL_STUDIO"):
        label_studio_executable()


def test_the_callers_username_password_and_port_do_not_reach_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "USERNAME": "someone",
        "PASSWORD": "theirs",
        "PORT": "1",
        "LABEL_STUDIO_PORT": "2",
        "HEARTEX_HOST": "elsewhere",
    }.items():
        monkeypatch.setenv(name, value)
    server = LocalLabelStudio(tmp_path, token="abcdef123456")
    server._prepare()
    env = server._environment()
    leaked = {"USERNAME", "PASSWORD", "PORT", "LABEL_STUDIO_PORT", "HEARTEX_HOST"} & set(env)
    assert not leaked
    assert env["LABEL_STUDIO_USER_TOKEN"] == "abcdef123456"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path / "data")


def test_a_bad_token_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="token"):
        LocalLabelStudio(token="short")


@pytest.mark.label_studio
def test_the_server_accepts_its_own_token_only(label_studio: LocalLabelStudio) -> None:
    status, user = _get(f"{label_studio.url}/api/current-user/whoami", label_studio.token)
    assert (status, user.get("email")) == (200, label_studio.username)
    status, _ = _get(f"{label_studio.url}/api/current-user/whoami", "0" * 40)
    assert status == 401
    assert label_studio.log_path.is_file()


@pytest.mark.label_studio
def test_a_restart_onto_a_busy_port_is_followed_to_the_port_really_served(
    label_studio: LocalLabelStudio,
) -> None:
    # Label Studio moves to another port without failing when its port is taken.
    old_port = label_studio.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        label_studio.kill()
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        label_studio.start()
    assert label_studio.port != old_port
    status, user = _get(f"{label_studio.url}/api/current-user/whoami", label_studio.token)
    assert (status, user.get("email")) == (200, label_studio.username)


@pytest.mark.label_studio
def test_a_port_taken_between_label_studios_check_and_bind_is_left_for_a_fresh_one(
    label_studio: LocalLabelStudio,
) -> None:
    # Label Studio checks a port by connecting to it: the next port, bound by another
    # process but not listening yet, passes that check and is then refused at bind, and
    # the server exits ("That port is already in use"), as it did once in CI.
    old_port = label_studio.port
    # The log is the session's: earlier starts may have met the race too (as CI's did once).
    log_before = label_studio.log_path.stat().st_size
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as binder,
    ):
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        label_studio.kill()
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        binder.bind(("127.0.0.1", old_port + 1))
        label_studio.start()
        assert label_studio.port not in (old_port, old_port + 1)
        status, user = _get(f"{label_studio.url}/api/current-user/whoami", label_studio.token)
    assert (status, user.get("email")) == (200, label_studio.username)
    # The race was met (at least once: the fresh port may be taken too, and is retried).
    this_test_log = label_studio.log_path.read_bytes()[log_before:]
    assert this_test_log.count(b"That port is already in use") >= 1
