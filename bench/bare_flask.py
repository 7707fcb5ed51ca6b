"""The peer for bench/transitions.py: a bare Flask JSON endpoint and nothing else.

Served by gunicorn with the same worker count, worker class and logging as `sopflow serve`,
it shows what the web stack alone costs on this machine, in the same run:

    gunicorn --chdir bench --workers 2 --worker-class sync bare_flask:app
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def ok() -> dict[str, bool]:
    return {"ok": True}
