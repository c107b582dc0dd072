"""Pooled accounts: several logins of one provider, each with its own connection limit.

A provider's own credentials are its first account; `providers[].accounts` adds more. Channels
are the same whichever account serves them: a tune or a probe takes any account with a free
slot and the stream URL is rewritten to carry that account's credentials (Xtream URLs carry them
as path segments `/<user>/<password>/`, panel M3U URLs as `username=`/`password=` query keys).
Accounting is per login (host + user name): two providers that are the same login share one
budget. Budget keys never contain credentials: `<provider>` for the first account,
`<provider>#<n>` for the n-th further one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from plextuner.config import ProviderConfig
from plextuner.ingest.urls import url_problem
from plextuner.redact import host_of


@dataclass(frozen=True, slots=True)
class Account:
    key: str  # the budget this account's connections count against
    provider: str
    user: str | None = None
    password: str | None = None
    login: str | None = None  # host + user: the identity a provider counts connections by
    max_connections: int | None = None

    def stream_url(self, url: str, first: Account) -> str:
        """`url` (built with the first account's credentials) with this account's."""
        if self is first or None in (self.user, self.password, first.user, first.password):
            return url
        assert self.user is not None and self.password is not None
        assert first.user is not None and first.password is not None
        parts = urlsplit(url)
        old = f"/{quote(first.user, safe='')}/{quote(first.password, safe='')}/"
        new = f"/{quote(self.user, safe='')}/{quote(self.password, safe='')}/"
        path = parts.path.replace(old, new, 1)
        query = parts.query
        if query:
            swap = {"username": self.user, "password": self.password}
            pairs = [(k, swap.get(k.lower(), v)) for k, v in parse_qsl(query, True)]
            query = urlencode(pairs)
        rewritten = urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))
        return rewritten if url_problem(rewritten) is None else url


def credentials_in(url: str) -> tuple[str, str] | None:
    """(user, password) of a panel URL: `username`/`password` query keys (get.php style)."""
    try:
        query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    except ValueError:
        return None
    user = query.get("username")
    word = query.get("password")
    return (user, word) if user and word else None


def accounts_of(cfg: ProviderConfig) -> list[Account]:
    """The provider's accounts, its own credentials first."""
    if cfg.xtream is not None:
        host = host_of(cfg.xtream.url)
        first_user = cfg.xtream.username.get_secret_value() if cfg.xtream.username else None
        first_pw = cfg.xtream.password.get_secret_value() if cfg.xtream.password else None
        creds: list[tuple[str | None, str | None, str]] = [(first_user, first_pw, host)]
        for a in cfg.accounts:
            user = a.username.get_secret_value() if a.username else None
            pw = a.password.get_secret_value() if a.password else None
            creds.append((user, pw, host))
    else:
        urls = [cfg.m3u_url, *(a.m3u_url for a in cfg.accounts)]
        creds = []
        for url in urls:
            text = url.get_secret_value() if url is not None else ""
            found = credentials_in(text)
            creds.append((*(found or (None, None)), host_of(text)))
    limits = [cfg.max_connections, *(a.max_connections for a in cfg.accounts)]
    out = []
    for index, ((user, pw, host), limit) in enumerate(zip(creds, limits, strict=True)):
        key = cfg.name if index == 0 else f"{cfg.name}#{index + 1}"
        login = f"{host}|{user}" if user else None
        out.append(Account(key, cfg.name, user, pw, login, limit))
    return out
