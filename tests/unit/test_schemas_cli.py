"""``salesflow schemas check`` as docs/how-to/change-a-payload.md shows it: the released schemas pass,
and a new field on a released version (step 2 of the page) is refused, naming file, path and rule."""

from __future__ import annotations

import msgspec
import pytest
from typer.testing import CliRunner

from salesflow.cli.main import app
from salesflow.domain import events
from salesflow.domain.events import EventType
from salesflow.domain.limits import Name


def test_the_released_schemas_pass() -> None:
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "the code is compatible with each, both ways" in result.output


def test_a_new_optional_field_on_a_released_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The page's step 2: `region: Name | None = None` added to the v1 struct, under its own name.
    with_region = msgspec.defstruct(
        "LeadCreatedV1",
        [("region", Name | None, None)],
        bases=(events.LeadCreatedV1,),
        frozen=True,
        kw_only=True,
        module=events.__name__,
    )
    monkeypatch.setitem(events.PAYLOAD_MODELS, (EventType.LEAD_CREATED, "v1"), with_region)
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == 1, result.output
    assert "lead.created/v1.json: data.region: PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" in result.output
