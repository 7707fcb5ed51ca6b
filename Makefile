.PHONY: install test lint ci

install:
	python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'

test:
	.venv/bin/pytest

lint:
	.venv/bin/ruff check . && .venv/bin/lint-imports && .venv/bin/mypy

ci:
	bash .ci/run
