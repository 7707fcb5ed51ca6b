"""The Mermaid diagram an SOP author sees of what they wrote."""

from __future__ import annotations

import re
from dataclasses import replace

from engine.domain.diagram import escape, mermaid, state_ids
from engine.domain.durations import Duration
from engine.domain.model import SOP, Fee, Requirement, Step, Transition


def izin_sop(**changes: object) -> SOP:
    """A small paid permit SOP with a paused step, a withdrawal and hyphenated step ids."""
    sop = SOP(
        key="izin-reklame",
        version=3,
        opd="dpmptsp",
        title="Izin Reklame",
        fee=Fee(150_000),
        requirements=(Requirement("ktp", "Fotokopi KTP"), Requirement("foto", "Foto lokasi")),
        roles={"loket": "Petugas Loket", "kabid": "Kepala Bidang", "kasir": "Kasir"},
        steps=(
            Step("cek-berkas", "Pemeriksaan berkas", "loket", Duration.parse("1d 4h")),
            Step("tunggu-pemohon", "Menunggu pemohon", clock="paused"),
            Step("bayar-retribusi", "Pembayaran retribusi", "kasir"),
            Step("putusan", "Keputusan kepala bidang", "kabid", Duration.parse("2d")),
            Step("terbit", "Izin terbit", final=True, outcome="completed"),
            Step("ditolak", "Izin ditolak", final=True, outcome="rejected"),
            Step("dicabut", "Permohonan dicabut", final=True, outcome="withdrawn"),
        ),
        transitions=(
            Transition("terima", ("cek-berkas",), "bayar-retribusi", requires=("ktp", "foto")),
            Transition(
                "kembalikan", ("cek-berkas", "putusan"), "tunggu-pemohon", comment_required=True
            ),
            Transition("lengkapi", ("tunggu-pemohon",), "cek-berkas", role="loket"),
            Transition("cabut", ("tunggu-pemohon",), "dicabut", role="loket"),
            Transition("bayar", ("bayar-retribusi",), "putusan", requires_payment=True),
            Transition("setujui", ("putusan",), "terbit", not_by=("terima",)),
            Transition("tolak", ("putusan",), "ditolak", comment_required=True),
        ),
    )
    return replace(sop, **changes)  # type: ignore[arg-type]


def test_diagram_starts_with_a_header_comment_and_the_diagram_type() -> None:
    lines = mermaid(izin_sop()).splitlines()
    assert lines[0] == "%% izin-reklame v3 — Izin Reklame"
    assert lines[1] == "stateDiagram-v2"


def test_every_step_is_a_state_with_its_name_role_and_sla() -> None:
    text = mermaid(izin_sop())
    assert 'state "Pemeriksaan berkas<br/>Petugas Loket · SLA 1d 4h" as s_cek_berkas' in text
    assert 'state "Pembayaran retribusi<br/>Kasir" as s_bayar_retribusi' in text
    assert 'state "Izin terbit" as s_terbit' in text
    for step in izin_sop().steps:
        assert f" as {state_ids(izin_sop())[step.id]}\n" in text


def test_paused_step_says_the_clock_stops() -> None:
    text = mermaid(izin_sop())
    assert 'state "Menunggu pemohon<br/>⏸ jam berhenti / clock paused" as s_tunggu_pemohon' in text


def test_initial_and_final_steps_are_joined_to_the_pseudo_state() -> None:
    lines = mermaid(izin_sop()).splitlines()
    assert "    [*] --> s_cek_berkas" in lines
    ends = [line.strip() for line in lines if line.endswith("--> [*]")]
    assert ends == ["s_terbit --> [*]", "s_ditolak --> [*]", "s_dicabut --> [*]"]


def test_every_transition_is_an_edge_per_source_with_its_guard_notes() -> None:
    lines = {line.strip() for line in mermaid(izin_sop()).splitlines()}
    assert {
        "s_cek_berkas --> s_bayar_retribusi: terima [ktp, foto]",
        "s_cek_berkas --> s_tunggu_pemohon: kembalikan ✎",
        "s_putusan --> s_tunggu_pemohon: kembalikan ✎",
        "s_tunggu_pemohon --> s_cek_berkas: lengkapi (Petugas Loket)",
        "s_tunggu_pemohon --> s_dicabut: cabut (Petugas Loket)",
        "s_bayar_retribusi --> s_putusan: bayar Rp",
        "s_putusan --> s_terbit: setujui ≠terima",
        "s_putusan --> s_ditolak: tolak ✎",
    } <= lines
    edges = [line for line in lines if "-->" in line and "[*]" not in line]
    assert len(edges) == 8


def test_paused_and_final_steps_get_their_own_classes() -> None:
    text = mermaid(izin_sop())
    for cls in ("paused", "final", "rejected", "withdrawn"):
        assert re.search(rf"^    classDef {cls} \S+", text, re.MULTILINE)
    assert "stroke-dasharray" in text.split("classDef paused", 1)[1].splitlines()[0]
    assert "    class s_tunggu_pemohon paused" in text
    assert "    class s_terbit final" in text
    assert "    class s_ditolak rejected" in text
    assert "    class s_dicabut withdrawn" in text


def test_running_steps_get_no_class() -> None:
    class_lines = [
        line for line in mermaid(izin_sop()).splitlines() if line.startswith("    class ")
    ]
    assert not any("s_cek_berkas" in line or "s_putusan" in line for line in class_lines)


def test_hostile_characters_in_names_are_escaped() -> None:
    base = izin_sop()
    hostile = 'Cek "asli": A; B #1 <b>x</b> & `md`'
    sop = replace(
        base,
        title="Izin\nReklame",
        roles={**base.roles, "loket": "Loket: 1; <2>"},
        steps=(replace(base.steps[0], name=hostile), *base.steps[1:]),
    )
    text = mermaid(sop)
    assert text.splitlines()[0] == "%% izin-reklame v3 — Izin Reklame"
    state = next(line for line in text.splitlines() if line.endswith(" as s_cek_berkas"))
    assert state == (
        '    state "Cek #quot;asli#quot;#58; A#59; B #35;1 #lt;b#gt;x#lt;/b#gt; #amp; #96;md#96;'
        '<br/>Loket#58; 1#59; #lt;2#gt; · SLA 1d 4h" as s_cek_berkas'
    )
    assert "s_tunggu_pemohon --> s_cek_berkas: lengkapi (Loket#58; 1#59; #lt;2#gt;)" in text


def test_escape_writes_each_entity_code_once() -> None:
    assert escape("#;") == "#35;#59;"
    assert escape('a"b') == "a#quot;b"
    assert escape("baris\nsatu   dua") == "baris satu dua"


def test_step_ids_with_hyphens_become_safe_unique_state_ids() -> None:
    base = izin_sop()
    sop = replace(
        base,
        steps=(
            *base.steps,
            Step("cek_berkas", "Bentrok dengan cek-berkas", "loket"),
            Step("cek_berkas_2", "Bentrok dengan akhiran", "loket"),
        ),
    )
    ids = state_ids(sop)
    assert ids["cek-berkas"] == "s_cek_berkas"
    assert ids["tunggu-pemohon"] == "s_tunggu_pemohon"
    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"s_\w+", safe) for safe in ids.values())
    text = mermaid(sop)
    assert not re.search(r"\bs_[\w]*-", text)
    assert f"as {ids['cek_berkas']}" in text and f"as {ids['cek_berkas_2']}" in text


def test_step_without_role_or_sla_shows_only_its_name() -> None:
    base = izin_sop()
    sop = replace(base, steps=(*base.steps[:-1], Step("dicabut", "Dicabut", final=True)))
    assert 'state "Dicabut" as s_dicabut' in mermaid(sop)
    # a final step without an outcome still reads as a normal end
    assert "    class s_terbit,s_dicabut final" in mermaid(sop)
