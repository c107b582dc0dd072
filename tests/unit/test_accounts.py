"""Pooled accounts: config, URL rewriting, per-login budgets, secrets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plextuner.config import Settings, load_settings, redacted_dump, secret_values
from plextuner.errors import ConfigError
from plextuner.stream.accounts import accounts_of
from plextuner.stream.budget import BudgetRegistry
from tests.waiting import until


def settings(providers: list[dict[str, Any]]) -> Settings:
    return load_settings(None, {"providers": providers}, env={})


XTREAM: dict[str, Any] = {
    "name": "xt",
    "xtream": {"url": "http://panel.example:8080", "username": "u 1", "password": "p/1"},
    "max_connections": 1,
    "accounts": [{"username": "second", "password": "pw#2", "max_connections": 2}],
}


def test_xtream_accounts_rewrite_path_credentials() -> None:
    """The second account's URL carries its own (quoted) credentials; keys carry none."""
    first, second = accounts_of(settings([XTREAM]).providers[0])
    url = "http://panel.example:8080/live/u%201/p%2F1/42.ts"
    assert second.stream_url(url, first) == "http://panel.example:8080/live/second/pw%232/42.ts"
    assert first.stream_url(url, first) == url
    assert (first.key, second.key) == ("xt", "xt#2")
    assert second.max_connections == 2


def test_m3u_accounts_rewrite_query_credentials() -> None:
    """Panel M3U URLs give the credentials; stream URLs with query credentials are rewritten."""
    cfg = settings(
        [
            {
                "name": "m",
                "m3u_url": "http://h.example/get.php?username=a&password=b",
                "accounts": [{"m3u_url": "http://h.example/get.php?username=c&password=d"}],
            }
        ]
    ).providers[0]
    first, second = accounts_of(cfg)
    assert second.stream_url("http://h.example/live/a/b/1.ts", first).endswith("/live/c/d/1.ts")
    assert second.stream_url("http://h.example/play?username=a&password=b&id=1", first) == (
        "http://h.example/play?username=c&password=d&id=1"
    )


def test_same_login_shares_one_budget() -> None:
    """An M3U and an Xtream provider of the same login count against one limit."""
    m3u: dict[str, Any] = {
        "name": "m",
        "m3u_url": "http://panel.example:8080/get.php?username=u 1&password=p/1",
    }
    budgets = BudgetRegistry(1)
    budgets.configure_accounts(settings([XTREAM, m3u]).providers)
    assert budgets.get("m") is budgets.get("xt")
    assert budgets.get("xt#2") is not budgets.get("xt")
    assert budgets.get("xt#2").limit == 2


def test_account_config_errors_and_secrets() -> None:
    """Wrong account kinds are clear errors; account secrets are registered and redacted."""
    with pytest.raises(ConfigError, match="username/password"):
        settings([{**XTREAM, "accounts": [{"m3u_url": "http://x/get.php"}]}])
    with pytest.raises(ConfigError, match="username and password"):
        settings([{**XTREAM, "accounts": [{"username": "only"}]}])
    loaded = settings([XTREAM])
    assert "pw#2" in secret_values(loaded)
    assert "pw#2" not in str(redacted_dump(loaded))


async def test_a_release_on_any_account_serves_a_waiting_tune() -> None:
    """Both accounts full: a tune waits on all of them and takes the one freed first (here the
    second); nothing stays counted on the other."""
    budgets = BudgetRegistry(1, viewer_wait=5)
    budgets.configure_accounts(settings([XTREAM]).providers)  # xt: 1 connection, xt#2: 2
    held = [await budgets.get("xt").acquire_viewer()]
    held += [await budgets.get("xt#2").acquire_viewer() for _ in range(2)]
    waiter = asyncio.create_task(budgets.lease_any("xt"))
    await until(lambda: budgets.get("xt#2").viewers_waiting == 1, "the tune to wait")
    held[1].release()
    lease, account = await asyncio.wait_for(waiter, 5)
    assert account.key == "xt#2"
    assert (budgets.get("xt").in_use, budgets.get("xt#2").in_use) == (1, 2)
    assert budgets.get("xt").viewers_waiting == 0
    for item in (lease, held[0], held[2]):
        item.release()
