"""Bring your own login: RS256/ES256 tokens of an external identity provider, verified through its JWKS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import Actor, RunningServer, World, assert_error, make_settings, run_server


class _Provider:
    """A stand-in identity provider: serves its current public keys at /jwks.json."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0

    def add(self, kid: str, private_key: Any, alg: str) -> None:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
        self.keys[kid] = {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def provider() -> Iterator[tuple[_Provider, str]]:
    state = _Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps({"keys": list(state.keys.values())}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{http.server_address[1]}/jwks.json"
    http.shutdown()


def _token(user: Actor, key: Any, alg: str, kid: str) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": user.id, "iat": now, "exp": now + 300}, key, algorithm=alg, headers={"kid": kid}
    )


async def test_provider_tokens_are_accepted_and_keys_rotate(
    server: RunningServer, world: World, provider: tuple[_Provider, str]
) -> None:
    state, url = provider
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    state.add("rsa-1", rsa_key, "RS256")
    user = await world.user("engineer")
    settings = make_settings(
        str(server.settings.database_url),
        server.settings.data_dir,
        jwks_url=url,
        jwks_refresh_cooldown_s=0,
        ingest_processes=0,
    )
    async with run_server(settings) as idp_server, httpx.AsyncClient(base_url=idp_server.url) as http:

        async def status(token: str) -> httpx.Response:
            return await http.get("/api/status", headers={"Authorization": f"Bearer {token}"})

        assert state.fetches == 0  # nothing is fetched before a provider's token comes
        assert (await status(_token(user, rsa_key, "RS256", "rsa-1"))).status_code == 200
        assert state.fetches == 1
        # Known keys are kept: more tokens signed with them fetch nothing.
        for _ in range(3):
            assert (await status(_token(user, rsa_key, "RS256", "rsa-1"))).status_code == 200
        assert state.fetches == 1
        # The provider rotates in a new key: a token with the new kid makes the server fetch the keys again.
        state.add("ec-2", ec_key, "ES256")
        assert (await status(_token(user, ec_key, "ES256", "ec-2"))).status_code == 200
        assert state.fetches == 2
        # A key the provider never published, and a provider kid signed by someone else, are refused.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert_error(await status(_token(user, stranger, "RS256", "unknown")), 401)
        assert_error(await status(_token(user, stranger, "RS256", "rsa-1")), 401)
        # Our own HS256 tokens keep working beside the provider's, and never ask the provider.
        fetched = state.fetches
        assert (await status(user.token)).status_code == 200
        assert state.fetches == fetched


async def test_unknown_key_ids_refetch_the_keys_at_most_once_per_cooldown(
    server: RunningServer, world: World, provider: tuple[_Provider, str]
) -> None:
    state, url = provider
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state.add("rsa-1", rsa_key, "RS256")
    user = await world.user("engineer")
    settings = make_settings(
        str(server.settings.database_url),
        server.settings.data_dir,
        jwks_url=url,
        jwks_refresh_cooldown_s=3600,
        ingest_processes=0,
    )
    async with run_server(settings) as idp_server, httpx.AsyncClient(base_url=idp_server.url) as http:

        async def status(token: str) -> httpx.Response:
            return await http.get("/api/status", headers={"Authorization": f"Bearer {token}"})

        assert (await status(_token(user, rsa_key, "RS256", "rsa-1"))).status_code == 200
        assert state.fetches == 1
        # Someone sprays tokens with made-up key ids: within the cooldown, none makes the server ask again.
        for n in range(20):
            assert_error(await status(_token(user, rsa_key, "RS256", f"made-up-{n}")), 401)
        assert state.fetches == 1
        # A key really rotated in meanwhile waits for the cooldown too (JWKS_REFRESH_COOLDOWN_S is that trade).
        state.add("rsa-2", rsa_key, "RS256")
        assert_error(await status(_token(user, rsa_key, "RS256", "rsa-2")), 401)
        assert state.fetches == 1
        assert (await status(_token(user, rsa_key, "RS256", "rsa-1"))).status_code == 200
