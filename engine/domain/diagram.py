"""A Mermaid `stateDiagram-v2` of an SOP, for authors to check what they wrote."""

from __future__ import annotations

from engine.domain.model import SOP, Step, Transition

STYLES = (
    "classDef paused fill:#fff8c5,stroke:#9a6700,stroke-width:2px,stroke-dasharray:5 5",
    "classDef final fill:#dafbe1,stroke:#1a7f37,stroke-width:2px",
    "classDef rejected fill:#ffebe9,stroke:#cf222e,stroke-width:2px",
    "classDef withdrawn fill:#eaeef2,stroke:#57606a,stroke-width:2px",
)
# Mermaid reads `#name;` / `#123;` as entity codes. One pass with `str.translate`, so the
# `#` and `;` of a code just written are never escaped again.
_ENTITIES = str.maketrans(
    {
        "#": "#35;",
        "&": "#amp;",
        '"': "#quot;",
        ":": "#58;",
        ";": "#59;",
        "<": "#lt;",
        ">": "#gt;",
        "`": "#96;",  # a label opening with a backtick would become a markdown string
    }
)


def escape(text: str) -> str:
    """Make text safe inside a Mermaid label (entity codes, one line)."""
    return " ".join(text.translate(_ENTITIES).split())


def state_ids(sop: SOP) -> dict[str, str]:
    """A Mermaid-safe, unique state id for every step id (`-` becomes `_`, prefix `s_`)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for step in sop.steps:
        base = "s_" + "".join(
            c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in step.id
        )
        safe, n = base, 2
        while safe in taken:
            safe, n = f"{base}_{n}", n + 1
        taken.add(safe)
        ids[step.id] = safe
    return ids


def mermaid(sop: SOP) -> str:
    """The SOP as a Mermaid `stateDiagram-v2`, paused and final steps styled apart."""
    ids = state_ids(sop)
    lines = [
        f"%% {' '.join(sop.key.split())} v{sop.version} — {' '.join(sop.title.split())}",
        "stateDiagram-v2",
        *(f"    {style}" for style in STYLES),
    ]
    lines += [f'    state "{_state_label(sop, s)}" as {ids[s.id]}' for s in sop.steps]
    lines.append(f"    [*] --> {ids[sop.initial.id]}")
    for t in sop.transitions:
        label = _transition_label(sop, t)
        lines += [f"    {ids[source]} --> {ids[t.dest]}: {label}" for source in t.sources]
    lines += [f"    {ids[s.id]} --> [*]" for s in sop.steps if s.final]
    for cls, steps in _classes(sop).items():
        if steps:
            lines.append(f"    class {','.join(ids[s.id] for s in steps)} {cls}")
    return "\n".join(lines) + "\n"


def _state_label(sop: SOP, step: Step) -> str:
    details = []
    if step.role is not None:
        details.append(escape(sop.roles.get(step.role, step.role)))
    if step.paused:
        details.append("⏸ jam berhenti / clock paused")
    elif step.sla is not None:
        details.append(f"SLA {escape(str(step.sla))}")
    label = escape(step.name)
    return f"{label}<br/>{' · '.join(details)}" if details else label


def _transition_label(sop: SOP, t: Transition) -> str:
    notes = [t.name]
    if t.requires:
        notes.append(f"[{', '.join(t.requires)}]")
    if t.comment_required:
        notes.append("✎")
    if t.not_by:
        notes.append(" ".join(f"≠{n}" for n in t.not_by))
    if t.requires_payment:
        notes.append("Rp")
    if t.role is not None:
        # The step's own role is already on the state; only an override is news here.
        notes.append(f"({sop.roles.get(t.role, t.role)})")
    return escape(" ".join(notes))


def _classes(sop: SOP) -> dict[str, list[Step]]:
    classes: dict[str, list[Step]] = {"paused": [], "final": [], "rejected": [], "withdrawn": []}
    for s in sop.steps:
        if s.paused:
            classes["paused"].append(s)
        elif s.final:
            # a completed end is `final`; the other outcomes get their own colour
            classes["final" if s.outcome in (None, "completed") else s.outcome].append(s)
    return classes
