"""`sopflow pdp`: personal data (UU 27/2022) from the command line: the record of
processing, and erasure of what is past its retention."""

from __future__ import annotations

import click


@click.group()
def pdp() -> None:
    """Personal data: the record of processing, erasure at retention's end."""


@pdp.command("report")
@click.option("--opd", required=True, help="the office whose record of processing to print")
def pdp_report(opd: str) -> None:
    """Print the record of processing per SOP: personal fields, purpose, retention."""
    from engine.service.personal import processing_record
    from sopflow.cli import _context

    record = processing_record(_context(), opd)
    if not record:
        click.echo(f"{opd}: no published SOPs, so no personal data processed")
        return
    click.echo(f"Record of processing (UU 27/2022) of {opd}")
    for item in record:
        click.echo("")
        click.echo(f"{item['sop']} (version {item['version']}): {item['title']}")
        fields = ", ".join(
            f["name"] + ("" if f["marked_pii"] else " (not marked pii)")
            for f in item["personal_fields"]
        )
        click.echo(f"  personal fields: {fields or '-'}")
        click.echo(f"  free text:       {item['free_text']}")
        click.echo(f"  purpose:         {item['purpose']}")
        if item["legal_basis"]:
            click.echo(f"  legal basis:     {'; '.join(item['legal_basis'])}")
        retention = item["retention"]
        click.echo(
            "  retention:       "
            + (f"{retention} after the case is closed" if retention else "not set (kept)")
        )


@pdp.command("erase-expired")
def pdp_erase_expired() -> None:
    """Erase the personal data of closed cases past their SOP's retention (each audited)."""
    from engine.service.personal import erase_expired
    from sopflow.cli import _context

    erased = erase_expired(_context())
    for case_id in erased:
        click.echo(f"erased {case_id}")
    click.echo(f"{len(erased)} case{'s' * (len(erased) != 1)} erased", err=True)
