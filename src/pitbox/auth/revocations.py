"""Revocations reach every instance: forgotten in this one's credential cache at once, and announced (through
the hub's broker) to the others, which forget them when the announcement arrives."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson

from pitbox.auth.credentials import Credentials


class Revocations:
    """Forgets revoked credentials here and tells the other instances."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._announce: Callable[[dict[str, str | None]], None] | None = None

    def announce_revocations(self, announce: Callable[[dict[str, str | None]], None]) -> None:
        """Tell the other instances of every revocation through `announce` (the hub, on an internal channel);
        what they announce comes back through `forget_announced`."""
        self._announce = announce

    def forget_principals(
        self,
        *,
        key_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        token_id: str | None = None,
        all_keys: bool = False,
    ) -> None:
        """Stop trusting cached credentials of an API key, a user, one token or every API key (after a
        revocation or a change): here at once, and on the other instances as soon as the announcement reaches
        them."""
        self._credentials.forget(key_id, user_id, token_id, all_keys)
        if self._announce is not None:
            self._announce(
                {
                    "keyId": str(key_id) if key_id else None,
                    "userId": str(user_id) if user_id else None,
                    "tokenId": token_id,
                    **({"allKeys": "true"} if all_keys else {}),
                }
            )

    def forget_key_principals(self) -> None:
        """Check every API key afresh at its next use: a team change may have ended a key creator's rights."""
        self.forget_principals(all_keys=True)

    def forget_announced(self, data_json: bytes) -> None:
        """A revocation announced by an instance (this one included): forget those credentials here too."""
        message = orjson.loads(data_json)
        key_id, user_id, token_id = message.get("keyId"), message.get("userId"), message.get("tokenId")
        self._credentials.forget(
            uuid.UUID(key_id) if isinstance(key_id, str) else None,
            uuid.UUID(user_id) if isinstance(user_id, str) else None,
            token_id if isinstance(token_id, str) else None,
            message.get("allKeys") == "true",
        )
