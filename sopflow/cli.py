"""The `sopflow` command: validate, draw and publish SOPs; manage the database and users;
serve the API."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from engine.domain.diagram import mermaid
from engine.domain.errors import DefinitionError
from engine.domain.validator import load_file, sop_files
from engine.service.errors import ServiceError


class _Commands(click.Group):
    """sopflow's commands: a database that goes away mid-command is a plain message too."""

    def invoke(self, ctx: click.Context) -> object:
        from engine.service.errors import DatabaseUnavailable

        try:
            return super().invoke(ctx)
        except DatabaseUnavailable:
            raise click.ClickException(
                "the database stopped answering; check that it is running and try again"
            ) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sopflow")
def main() -> None:
    """Run Indonesian public services by their SOPs."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check SOP files or folders; print each problem as file:line:column: message."""
    files = problems = 0
    for path in paths:
        if path.is_dir() and not any(sop_files([path])):
            click.echo(f"{path}: no SOP files (*.yaml, *.yml) in this folder")
            problems += 1
    for path in sop_files(paths):
        files += 1
        try:
            # warnings (a field that looks personal, not marked `pii`) do not fail the file
            for warning in load_file(path).warnings:
                click.echo(warning.render(str(path)))
        except DefinitionError as e:
            problems += len(e.problems)
            for problem in e.problems:
                click.echo(problem.render(e.source))
    summary = f"{files} file{'s' * (files != 1)} checked, "
    summary += f"{problems} problem{'s' * (problems != 1)}" if problems else "all valid"
    click.echo(summary, err=True)
    sys.exit(1 if problems else 0)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def diagram(file: Path) -> None:
    """Print the Mermaid state diagram of an SOP."""
    try:
        sop = load_file(file)
    except DefinitionError as e:
        for problem in e.problems:
            click.echo(problem.render(e.source), err=True)
        sys.exit(1)
    click.echo(mermaid(sop))


def _context():  # type: ignore[no-untyped-def]
    """The service context on the configured database, which must be set up already."""
    from engine.service.context import Context
    from engine.settings import get_settings

    url = get_settings().database_url
    _check_ready(url)
    return Context.from_url(url)


def _check_ready(url: str, schema: bool = True) -> None:
    """Stop with one plain line (exit 1) when the database cannot be used as it is."""
    from engine.store.migrate import NotReady, check_ready

    try:
        check_ready(url, schema)
    except NotReady as e:
        raise click.ClickException(str(e)) from None


@main.group()
def db() -> None:
    """The database."""


@db.command()
@click.option(
    "--service-role",
    metavar="NAME",
    help="also create (or update) the PostgreSQL role the service runs as: it may only "
    "INSERT and SELECT on the audit trail; its password is SOPFLOW_SERVICE_ROLE_PASSWORD",
)
def upgrade(service_role: str | None) -> None:
    """Create the database or migrate it to the latest schema (run it as the tables' owner)."""
    from engine.settings import get_settings
    from engine.store.db import make_engine
    from engine.store.migrate import upgrade as run_upgrade
    from engine.store.roles import RoleError, grant_service_role

    settings = get_settings()
    url = settings.database_url
    _check_ready(url, schema=False)
    engine = make_engine(url)
    try:
        run_upgrade(engine)
        click.echo(f"database at {_shown(url)} is up to date")
        if service_role:
            try:
                done = grant_service_role(engine, service_role, settings.service_role_password)
            except RoleError as e:
                raise click.ClickException(str(e)) from None
            for line in done:
                click.echo(line)
    finally:
        engine.dispose()


def _check_port(host: str, port: int) -> None:
    """Stop with one plain line when the port is taken, before anything else starts."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({e.strerror or e}): another program holds "
                "it; choose another port with --port"
            ) from None


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


EXPIRES_HELP = (
    "when the token stops working: a duration from now (90d, 12h, 2w) or a date "
    "(2027-03-31) [default: never]"
)


@main.group()
def user() -> None:
    """Users and their API tokens."""


@user.command("add")
@click.argument("name")
@click.option("--opd", help="the user's office (staff and admins)")
@click.option("--roles", default="", help="comma-separated role ids, e.g. loket,kasi")
@click.option("--admin", is_flag=True, help="may publish SOPs and read the OPD's trail")
@click.option("--inspector", is_flag=True, help="reads every OPD; changes nothing")
@click.option(
    "--calendar-admin",
    is_flag=True,
    help="keeps the calendar register (with --opd: that office's own days only)",
)
@click.option("--dpo", is_flag=True, help="the office's data-protection officer (with --opd)")
@click.option("--expires-in", "expires", metavar="WHEN", help=EXPIRES_HELP)
def user_add(
    name: str,
    opd: str | None,
    roles: str,
    admin: bool,
    inspector: bool,
    calendar_admin: bool,
    dpo: bool,
    expires: str | None,
) -> None:
    """Create a user and print its token (on the last line; it is shown only once).

    Warns (on standard error) when no published SOP uses the office or a role given."""
    from engine.service.users import add_user, parse_expiry, user_warnings

    role_list = tuple(r.strip() for r in roles.split(",") if r.strip())
    context = _context()
    try:
        expires_at = parse_expiry(expires, context.clock()) if expires else None
        who, token = add_user(
            context,
            name,
            opd,
            role_list,
            admin,
            inspector,
            calendar_admin=calendar_admin,
            dpo=dpo,
            expires_at=expires_at,
        )
    except ServiceError as e:
        _fail(e)
    for warning in user_warnings(context, who.opd, tuple(sorted(who.roles))):
        click.echo(f"warning: {warning}", err=True)
    kind = (
        "inspector" if who.inspector
        else "calendar administrator" if who.calendar_admin
        else "data-protection officer" if who.dpo
        else "admin" if who.admin
        else "staff"
    )  # fmt: skip
    where = f" of {who.opd}" if who.opd else ""
    click.echo(f"created {kind} `{who.name}`{where}; roles: {', '.join(sorted(who.roles)) or '-'}")
    click.echo(token)


@main.group()
def sop() -> None:
    """Published SOPs."""


@sop.command("publish")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def sop_publish(paths: tuple[Path, ...]) -> None:
    """Publish SOP files or folders, as POST /api/v1/sops would."""
    from engine.service.sops import publish_sop
    from engine.service.users import Principal

    context = _context()
    failed = False
    operator = f"cli:{getpass.getuser()}"
    for path in sop_files(paths):
        try:
            raw = path.read_bytes()
            owner = load_file(path).opd
            body, created = publish_sop(context, Principal(operator, owner, frozenset(), True), raw)
        except DefinitionError as e:
            failed = True
            for problem in e.problems:
                click.echo(problem.render(e.source), err=True)
            continue
        except (ServiceError, OSError) as e:
            failed = True
            click.echo(f"{path}: {e}", err=True)
            continue
        state = "published" if created else "already published, unchanged"
        click.echo(f"{path}: {body['sop']} v{body['version']} ({body['opd']}) {state}")
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API under gunicorn (the database is migrated first).

    With no SOPFLOW_BROKER_URL, the Celery worker and its scheduler run beside it on an
    embedded broker, so this one command gives a working system with live escalation.
    """
    from engine.settings import get_settings
    from engine.store.db import make_engine
    from engine.store.migrate import upgrade as run_upgrade
    from sopflow.server import run, stop_child, worker_beside

    settings = get_settings()
    _check_port(host, port)
    _check_ready(settings.database_url, schema=False)
    run_upgrade(make_engine(settings.database_url))
    click.echo(f"sopflow on http://{host}:{port} (docs: /docs) — {_shown(settings.database_url)}")
    if settings.embedded_broker:
        click.echo(f"timers: embedded broker in {settings.broker_folder()}")
        with worker_beside() as child:
            run(host, port, workers, on_stop=lambda: stop_child(child))
    else:
        run(host, port, workers)


@main.command()
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="also run the scheduler that starts a timer sweep every interval",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(beat: bool, loglevel: str) -> None:
    """Run the Celery worker (and its scheduler) that fires SLA timers and sends webhooks."""
    from engine.logs import configure_logging
    from engine.settings import get_settings

    _check_ready(get_settings().database_url)
    from worker.tasks import celery_app  # after the check: importing it reads the settings

    configure_logging(loglevel)
    # --quiet: no banner on standard output; what the worker says goes to the JSON log
    argv = ["--quiet", "worker", "--pool", "solo", "--loglevel", loglevel, "--without-gossip",
            "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@main.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run only the scheduler that starts a timer sweep every SOPFLOW_TIMER_INTERVAL seconds.

    For a stack with several `sopflow worker --no-beat`: one scheduler, many workers.
    """
    from engine.logs import configure_logging
    from worker.tasks import celery_app

    configure_logging(loglevel)
    celery_app.start(["--quiet", "beat", "--loglevel", loglevel])


@main.group()
def opd() -> None:
    """Offices (OPD)."""


@opd.command("webhook")
@click.argument("office")
@click.argument("url", required=False)
def opd_webhook(office: str, url: str | None) -> None:
    """Post the office's SLA events to URL (no URL: stop posting).

    Prints the new signing secret last: it is shown only this once.
    """
    from engine.service.notifications import set_webhook
    from engine.settings import get_settings

    allow_private = get_settings().allow_private_webhooks
    try:
        secret = set_webhook(_context(), office, url, allow_private=allow_private)
    except ServiceError as e:
        _fail(e)
    if url is None:
        click.echo(f"{office}: webhook removed")
        return
    click.echo(f"{office}: webhook set to {url}")
    click.echo("deliveries are signed (Standard Webhooks); the secret, shown only now:")
    click.echo(secret)


@main.command()
@click.option(
    "--database",
    default="sopflow-demo.db",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the SQLite file to create (replaced if it exists)",
)
@click.option("--seed", type=int, default=None, help="random seed [default: a fixed one]")
@click.option("--clean", is_flag=True, help="simulate a week with no planted abuses")
@click.option(
    "--workflows",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="folder of SOP files [default: the sample SOPs]",
)
def demo(database: Path, seed: int | None, clean: bool, workflows: Path | None) -> None:
    """Simulate a working week of cases on a fresh database and print the reports.

    Publishes the SOPs, staffs each office, runs citizens' cases through a simulated
    Monday to Friday (three officers misbehave unless --clean), then prints the
    bottleneck and anomaly reports and how to open the API on the same data.
    """
    from sopflow.demo import run_demo

    run_demo(database, seed=seed, planted=not clean, workflows_dir=workflows)


def _fail(error: ServiceError) -> None:
    click.echo(f"error: {error.detail}", err=True)
    for item in error.errors:
        click.echo(f"  {item.get('field', '')}: {item.get('message', '')}", err=True)
    sys.exit(1)


def _add_user_commands() -> None:
    from sopflow.users_cli import add_commands

    add_commands(user)


_add_user_commands()


def _add_trail_commands() -> None:
    from sopflow.trail import audit, witness

    main.add_command(audit)
    main.add_command(witness)


_add_trail_commands()


def _add_calendar_commands() -> None:
    from sopflow.calendar_cli import calendar

    main.add_command(calendar)


_add_calendar_commands()


def _add_pdp_commands() -> None:
    from sopflow.pdp_cli import pdp

    main.add_command(pdp)


_add_pdp_commands()
