"""Bodies of the team and driver routes."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from pitbox.auth.models import CamelModel

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
