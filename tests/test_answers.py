"""An answer that drifts from its response model is logged and still sent (api.http.answer)."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from pydantic import BaseModel

from api.http import JSONProvider, answer


class Small(BaseModel):
    name: str


def test_a_drifting_answer_is_logged_by_field_name_and_still_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    app.json = JSONProvider(app)
    with app.test_request_context("/api/v1/x"), caplog.at_level(logging.ERROR, "api.http"):
        response = answer(Small, {"name": "ok", "nik": "3201234567890001"})
        assert response.status_code == 200 and response.get_json()["name"] == "ok"
        assert "nik" in caplog.text and "3201234567890001" not in caplog.text
        caplog.clear()
        assert answer(Small, {"name": "ok"}).status_code == 200
        assert caplog.text == ""
