"""Errors of teams and their members, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Conflict


class LastManager(Conflict):
    """The last manager of a team leaving it or losing the role."""

    code = "last_manager"


class UserHasDriver(Conflict):
    """Giving a driver profile to a user who has one."""

    code = "user_has_driver"
