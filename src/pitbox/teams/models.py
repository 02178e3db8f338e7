"""Bodies and answers of the team, member, invitation and driver routes."""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg
from pydantic import Field

from pitbox.auth.models import CamelModel
from pitbox.wire import Answer, Timestamp

TeamRole = Literal["manager", "engineer", "driver"]


class TeamCreate(CamelModel):
    name: str = Field(min_length=1, max_length=200)


class TeamUpdate(CamelModel):
    name: str = Field(min_length=1, max_length=200)


class MemberAdd(CamelModel):
    user_id: uuid.UUID = Field(alias="userId")
    role: TeamRole


class DriverCreate(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    user_id: uuid.UUID | None = Field(None, alias="userId")
    team_id: uuid.UUID | None = Field(None, alias="teamId")


class DriverUpdate(CamelModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    user_id: uuid.UUID | None = Field(None, alias="userId")


class TeamDriverAdd(CamelModel):
    driver_id: uuid.UUID = Field(alias="driverId")


class Team(Answer):
    """A team as the API shows it."""

    id: uuid.UUID
    name: str
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Team:
        """From a `teams` row."""
        return cls.from_record(row)


class Member(Answer):
    """A member of a team: the user and their role in it."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: TeamRole

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Member:
        """From a row of `store.members`."""
        return cls.from_record(row)


class Driver(Answer):
    """A driver profile: the user it belongs to (if any) and the teams that hold it."""

    id: uuid.UUID
    name: str
    user_id: uuid.UUID | None
    team_ids: list[uuid.UUID]
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Driver:
        """From a row of `store.driver_by_id` / `store.drivers_by_ids`."""
        return cls.from_record(row)


class TeamDetail(Team):
    """One team with its members and drivers."""

    members: list[Member]
    drivers: list[Driver]


class Invitation(Answer):
    """A pending invitation to join a team."""

    id: uuid.UUID
    team_id: uuid.UUID
    team_name: str
    user_id: uuid.UUID
    role: TeamRole
    invited_by: uuid.UUID | None
    created_at: Timestamp
    expires_at: Timestamp
    status: Literal["pending"] = "pending"

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Invitation:
        """From a row of the invitation queries (with the team's name)."""
        return cls.from_record(row)


class InvitationAccepted(Answer):
    """The answer to accepting an invitation: the team joined, with which role."""

    team_id: uuid.UUID
    team_name: str
    role: TeamRole
    status: Literal["accepted"] = "accepted"
