"""Tokens: every broken, expired, early or forged token is a 401 with WWW-Authenticate; foreign libraries' tokens work."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import OctKey

from tests.conftest import TEST_JWT_SECRET, Actor, World, assert_error, missing


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user: Actor, **extra: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": user.id, "iat": now, "exp": now + 600, **extra}


async def _status_with(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/status", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def user(world: World) -> Actor:
    return await world.user("engineer")


def _hmac_token(header: dict[str, object], claims: dict[str, object], key: bytes) -> str:
    """A token signed by hand with HMAC-SHA256, whatever its header claims (the algorithm-confusion attack)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _forged_tokens(user: Actor) -> dict[str, str]:
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwt.encode(_claims(user), TEST_JWT_SECRET, algorithm="HS256")
    header, payload, _ = good.split(".")
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "expired": jwt.encode(
            _claims(user, exp=now - 3600, iat=now - 7200), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "not yet valid": jwt.encode(_claims(user, nbf=now + 3600), TEST_JWT_SECRET, algorithm="HS256"),
        "wrong secret": jwt.encode(
            _claims(user), "another-secret-entirely-0123456789-abcdef", algorithm="HS256"
        ),
        "alg none": f"{none_header}.{payload}.",
        "HS/RS confusion": _hmac_token({"alg": "HS256", "typ": "JWT"}, _claims(user), public_pem),
        "RS256 header, HMAC signature": _hmac_token(
            {"alg": "RS256", "typ": "JWT"}, _claims(user), TEST_JWT_SECRET.encode()
        ),
        "RS256 from an unknown key": jwt.encode(_claims(user), rsa_key, algorithm="RS256"),
        "truncated": good[: len(good) // 2],
        "tampered payload": f"{header}.{_b64(json.dumps(_claims(user, sub=str(uuid.uuid4()))).encode())}.{good.split('.')[2]}",
        "no exp": jwt.encode({"sub": user.id}, TEST_JWT_SECRET, algorithm="HS256"),
        "unknown user": jwt.encode(_claims(user, sub=str(uuid.uuid4())), TEST_JWT_SECRET, algorithm="HS256"),
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "not yet valid",
        "wrong secret",
        "alg none",
        "HS/RS confusion",
        "RS256 header, HMAC signature",
        "RS256 from an unknown key",
        "truncated",
        "tampered payload",
        "no exp",
        "unknown user",
        "garbage",
    ],
)
async def test_bad_tokens_get_401(client: httpx.AsyncClient, user: Actor, kind: str) -> None:
    response = await _status_with(client, _forged_tokens(user)[kind])
    assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_missing_or_malformed_header_gets_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = await client.get("/api/status", headers=headers)
        assert_error(response, 401)
        assert "www-authenticate" in response.headers


async def test_small_clock_skew_is_tolerated(client: httpx.AsyncClient, user: Actor) -> None:
    now = int(time.time())
    token = jwt.encode(_claims(user, iat=now + 10, nbf=now + 10), TEST_JWT_SECRET, algorithm="HS256")
    response = await _status_with(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["identity"]["user"]["id"] == user.id


async def test_token_signed_by_node_crypto_like_jsonwebtoken_is_accepted(
    client: httpx.AsyncClient, user: Actor
) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        missing("Node is missing (apt-get install nodejs): no token can be minted with Node's crypto")
    # The original service used Node's jsonwebtoken; Node's own crypto produces byte-identical HS256 tokens.
    script = (
        "const c=require('crypto');const b=o=>Buffer.from(JSON.stringify(o)).toString('base64url');"
        "const h=b({alg:'HS256',typ:'JWT'});const now=Math.floor(Date.now()/1000);"
        f"const p=b({{sub:'{user.id}',iat:now,exp:now+600,driverRole:'x'}});"
        f"const s=c.createHmac('sha256','{TEST_JWT_SECRET}').update(h+'.'+p).digest('base64url');"
        "console.log(h+'.'+p+'.'+s)"
    )
    result = await asyncio.to_thread(
        subprocess.run, [node, "-e", script], capture_output=True, text=True, check=True
    )
    token = result.stdout.strip()
    response = await _status_with(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["identity"]["user"]["id"] == user.id


async def test_token_minted_by_joserfc_is_accepted(client: httpx.AsyncClient, user: Actor) -> None:
    # Another library (joserfc, not the server's PyJWT) with its own header layout: `typ` first, and a `kid`.
    token = joserfc_jwt.encode(
        {"alg": "HS256", "kid": "k1"}, _claims(user), OctKey.import_key(TEST_JWT_SECRET)
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "HS256", "kid": "k1"}
    response = await _status_with(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["identity"]["user"]["id"] == user.id
