"""Reads an SOP file into the model, reporting every problem at once in plain words.

Each problem carries the line and column it was found at and, where a name is nearly
right, the name that was probably meant.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date, time
from pathlib import Path
from typing import Any, TypeVar, cast

from engine.domain import yamlsrc
from engine.domain.calendar import nominal_day_seconds
from engine.domain.durations import Duration
from engine.domain.errors import DefinitionError, Problem
from engine.domain.model import (
    BUILTIN_CALENDARS,
    ID_WORKING,
    ID_WORKING_BREAKS,
    ID_WORKING_HOURS,
    SOP,
    WEEKDAYS,
    CalendarSpec,
    Charge,
    Fee,
    FieldSpec,
    FieldType,
    Requirement,
    Rung,
    Step,
    Transition,
)
from engine.domain.patterns import PatternError, compile_pattern, matches
from engine.domain.personal import Retention, looks_personal
from engine.domain.yamlsrc import Node

SOP_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ID_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
FIELD_TYPES = ("string", "integer", "number", "boolean", "date")
OUTCOMES = ("completed", "rejected", "withdrawn")
# attributes the state machine keeps on each case object; a trigger must not shadow them
MAX_INT = 2**31 - 1
MAX_FEE = 10**13  # rupiah: far above any tariff, and within every column that holds money
RESERVED_TRANSITIONS = {"state", "trigger", "may_trigger"}

T = TypeVar("T")

TOP_KEYS = {
    "sop": True, "version": True, "opd": True, "title": True, "description": False,
    "legal_basis": False, "service_time": False, "fee": False, "calendar": False,
    "fields": False, "requirements": False, "roles": True, "steps": True,
    "transitions": True, "escalation": False, "deemed_approval": False,
    "charges": False, "decision_time": False, "retention": False,
}  # fmt: skip
STEP_KEYS = {
    "id": True, "name": True, "role": False, "sla": False, "clock": False, "output": False,
    "final": False, "outcome": False, "escalation": False,
}  # fmt: skip
TRANSITION_KEYS = {
    "name": True, "from": True, "to": True, "role": False, "requires": False,
    "comment_required": False, "not_by": False, "requires_payment": False,
}  # fmt: skip
RUNG_KEYS = {"at": True, "action": True, "to": False, "flag": False}
FIELD_KEYS = {"type": False, "required": False, "pattern": False, "pii": False}
REQUIREMENT_KEYS = {"id": True, "name": True, "optional": False, "when": False}
FEE_KEYS = {
    "amount": False, "basis": False, "collected_by": False, "levy": False, "billed_by": False,
}  # fmt: skip
CHARGE_KEYS = {"id": True, "name": True, "amount": True, "basis": True}
ROLE_KEYS = {"name": True, "opd": True}
CALENDAR_KEYS = {
    "timezone": False,
    "hours": False,
    "breaks": False,
    "holidays": False,
    "extra_holidays": False,
}


def load_sop(text: str | bytes, source: str = "<sop>") -> SOP:
    """Validate an SOP file's content and build the model; raise DefinitionError if invalid."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        tree, problems = yamlsrc.parse(raw)
    except yamlsrc.YamlRefused as e:
        raise DefinitionError([e.problem], source) from None
    checker = _Checker(problems)
    sop = checker.sop(tree)
    if checker.problems or sop is None:
        raise DefinitionError(sorted(set(checker.problems)), source)
    return replace(
        sop, digest=hashlib.sha256(raw).hexdigest(), warnings=tuple(checker.warnings)
    )


def load_file(path: str | Path) -> SOP:
    """Read and validate one SOP file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        problem = Problem(1, 1, f"cannot read the file: {e.strerror}")
        raise DefinitionError([problem], str(p)) from None
    return load_sop(raw, str(p))


def sop_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and folders into SOP files (`*.yaml`, `*.yml`), folders in name order."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
        else:
            yield path


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A "; did you mean `x`?" tail when a candidate is close to `word`, else ""."""
    close = _meant(word, candidates)
    return f"; did you mean `{close}`?" if close else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return "a set of keys"
    if isinstance(value, list):
        return "a list"
    return f"`{value}`"


class _Checker:
    """Walks the located tree, building the model and collecting problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        self.warnings: list[Problem] = []
        # the transitions' edges as far as they could be read, for the reachability check
        self.edges: list[tuple[str, str]] = []
        self.graph_known = True

    # ---- small typed readers -------------------------------------------------------------

    def add(self, node: Node | tuple[int, int], message: str) -> None:
        if isinstance(node, Node) and node.value is yamlsrc.REFUSED:
            return  # its tag was refused and reported; one problem per mistake
        line, col = (node.line, node.column) if isinstance(node, Node) else node
        self.problems.append(Problem(line, col, message))

    def mapping(
        self, node: Node, keys: dict[str, bool], where: str, what: str = "this"
    ) -> dict[str, Node] | None:
        """Check a mapping's keys: unknown ones (with a suggestion) and missing required ones."""
        if not isinstance(node.value, dict):
            self.add(
                node,
                f"{where}{what} should be a set of `key: value` lines, not {_kind(node.value)}",
            )
            return None
        found: dict[str, Node] = node.value
        meant = set()
        for key in found:
            if key not in keys:
                hint = suggest(key, keys)
                meant.add(hint.partition("`")[2].partition("`")[0])
                self.add(node.key_pos[key], f"{where}unknown key `{key}`{hint}")
        for key, required in keys.items():
            if required and key not in found and key not in meant:
                self.add(node, f"{where}`{key}` is missing")
        return {k: v for k, v in found.items() if k in keys}

    def text(self, node: Node, where: str, what: str) -> str | None:
        if (
            isinstance(node.value, bool)
            or node.value is None
            or isinstance(node.value, dict | list)
        ):
            self.add(
                node,
                f"{where}`{what}` should be text, not {_kind(node.value)}"
                + ("; put it in quotes" if isinstance(node.value, bool) else ""),
            )
            return None
        value = str(node.value).strip()
        if not value:
            self.add(node, f"{where}`{what}` is empty")
            return None
        return value

    def slug(self, node: Node, where: str, what: str, pattern: re.Pattern[str]) -> str | None:
        value = self.text(node, where, what)
        if value is None:
            return None
        if not pattern.match(value):
            allowed = "lowercase letters, digits and `-`"
            if pattern is ID_SLUG:
                allowed = "lowercase letters, digits, `_` and `-`"
            elif pattern is NAME:
                allowed = "lowercase letters, digits and `_`, not starting with a digit"
            self.add(node, f"{where}`{what}` is `{value}`; use only {allowed}")
            return None
        return value

    def boolean(self, node: Node, where: str, what: str) -> bool:
        if not isinstance(node.value, bool):
            self.add(node, f"{where}`{what}` should be `true` or `false`, not {_kind(node.value)}")
            return False
        return node.value

    def integer(
        self, node: Node, where: str, what: str, minimum: int, maximum: int = MAX_INT
    ) -> int | None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(
                node,
                f"{where}`{what}` should be a whole number of {minimum} or more, "
                f"not {_kind(value)}",
            )
            return None
        if value > maximum:
            self.add(node, f"{where}`{what}` is {value:,}; the most it can be is {maximum:,}")
            return None
        return value

    def retention(self, node: Node, where: str, what: str) -> str | None:
        try:
            return str(Retention.parse(node.value))
        except ValueError as e:
            self.add(node, f"{where}`{what}`: {e}")
            return None

    def duration(self, node: Node, where: str, what: str) -> Duration | None:
        if not isinstance(node.value, str):
            hint = "; add a unit, like `30m`" if isinstance(node.value, int) else ""
            self.add(
                node,
                f"{where}`{what}` should be a duration like `30m`, `2h` or `3d`, "
                f"not {_kind(node.value)}{hint}",
            )
            return None
        try:
            duration = Duration.parse(node.value)
        except ValueError as e:
            self.add(node, f"{where}`{what}`: {e}")
            return None
        if duration.days == 0 and duration.seconds == 0:
            self.add(
                node,
                f"{where}`{what}` is zero: it would be due the moment it starts; give a time "
                "like `30m`, or leave the key out",
            )
            return None
        return duration

    def items(self, node: Node, where: str, what: str) -> list[Node]:
        if not isinstance(node.value, list):
            self.add(node, f"{where}`{what}` should be a list, not {_kind(node.value)}")
            return []
        return cast(list[Node], node.value)

    def names(self, node: Node, where: str, what: str) -> list[tuple[str, Node]]:
        """A list of names, or a single name standing for a list of one."""
        entries = [node] if isinstance(node.value, str) else self.items(node, where, what)
        out = []
        for entry in entries:
            value = self.text(entry, where, what)
            if value is not None:
                out.append((value, entry))
        return out

    def optional(
        self, m: dict[str, Node], key: str, read: Callable[[Node], T | None], default: T
    ) -> T:
        """Read `key` if present; the default when absent or unreadable (already reported)."""
        if key not in m:
            return default
        value = read(m[key])
        return default if value is None else value

    def opt(
        self,
        m: dict[str, Node],
        key: str,
        read: Callable[[Node, str, str], T | None],
        where: str,
        default: T,
    ) -> T:
        """`optional` for the common readers that take (node, where, key)."""
        return self.optional(m, key, lambda n: read(n, where, key), default)

    # ---- the SOP -------------------------------------------------------------------------

    def sop(self, tree: Node) -> SOP | None:
        m = self.mapping(tree, TOP_KEYS, "", "an SOP file")
        if m is None:
            return None
        key = self.optional(m, "sop", lambda n: self.slug(n, "", "sop", SOP_SLUG), "")
        if len(key) > 64:
            self.add(m["sop"], f"`sop` is {len(key)} characters long; the limit is 64")
        version = self.optional(m, "version", lambda n: self.integer(n, "", "version", 1), 1)
        opd = self.optional(m, "opd", lambda n: self.slug(n, "", "opd", SOP_SLUG), "")
        title = self.opt(m, "title", self.text, "", "")
        description = self.opt(m, "description", self.text, "", None)
        legal_basis = tuple(
            v
            for v, _ in (
                self.names(m["legal_basis"], "", "legal_basis") if "legal_basis" in m else []
            )
        )
        service_time = self.opt(m, "service_time", self.duration, "", None)
        deemed = self.opt(m, "deemed_approval", self.boolean, "", False)
        if deemed and service_time is None:
            self.add(
                m["deemed_approval"],
                "`deemed_approval` needs a `service_time`: the "
                "application is deemed granted when that time runs out",
            )
        calendar = self.calendar(m["calendar"]) if "calendar" in m else ID_WORKING
        fields = self.fields(m["fields"]) if "fields" in m else ()
        requirements = (
            self.requirements(m["requirements"], fields) if "requirements" in m else ()
        )
        role_opds: dict[str, str] = {}
        roles = self.roles(m["roles"], role_opds) if "roles" in m else {}
        fee = self.fee(m["fee"], roles) if "fee" in m else Fee()
        charges = self.charges(m["charges"]) if "charges" in m else ()
        decision_time = self.opt(m, "decision_time", self.duration, "", None)
        if decision_time is not None and not deemed:
            self.add(
                m["decision_time"],
                "`decision_time` is the time to issue the decision after the application is "
                "deemed granted; it needs `deemed_approval: true`",
            )
        day = nominal_day_seconds(calendar.hours) or 86400
        ladder = (
            self.ladder(m["escalation"], "escalation: ", roles, day) if "escalation" in m else ()
        )
        steps, step_nodes = self.steps(m.get("steps"), roles, day, ladder)
        transitions = self.transitions(
            m.get("transitions"), steps, step_nodes, roles, requirements, fee
        )
        # reachability is checked with the other problems, on the steps that could be read;
        # where an endpoint could not be read at all, it would only echo them
        if steps and transitions is not None and self.graph_known:
            self.graph(steps, step_nodes, transitions, tree)
        return SOP(
            key=key,
            version=version,
            opd=opd,
            title=title,
            roles=roles,
            steps=tuple(steps),
            transitions=tuple(transitions or ()),
            calendar=calendar,
            description=description,
            legal_basis=legal_basis,
            service_time=service_time,
            fee=fee,
            fields=fields,
            requirements=requirements,
            escalation=ladder,
            deemed_approval=deemed,
            decision_time=decision_time,
            charges=charges,
            role_opds=role_opds,
            retention=self.opt(m, "retention", self.retention, "", None),
        )

    def fee(self, node: Node, roles: dict[str, str]) -> Fee:
        m = self.mapping(node, FEE_KEYS, "fee: ")
        if m is None:
            return Fee()
        amount = self.optional(
            m, "amount", lambda n: self.integer(n, "fee: ", "amount", 0, MAX_FEE), 0
        )
        basis = self.opt(m, "basis", self.text, "fee: ", None)
        levy = self.opt(m, "levy", self.boolean, "fee: ", False)
        billed_by = None
        if "billed_by" in m:
            billed_by = self.role_ref(m["billed_by"], "fee: `billed_by`: ", roles)
        if levy and "amount" in m:
            self.add(
                m["amount"],
                "fee: a levy has no fixed `amount`: each case's bill (SKRD) sets it; "
                "remove `amount` or `levy`",
            )
        if levy and "billed_by" not in m:
            self.add(node, "fee: a levy needs `billed_by`: the role that issues the bills (SKRD)")
        if "billed_by" in m and not levy:
            self.add(
                m["billed_by"],
                "fee: `billed_by` only applies to a levy; add `levy: true` or remove it",
            )
        if levy and basis is None:
            self.add(
                node,
                "fee: a levy needs its legal `basis` (the regional regulation that sets it)",
            )
        if amount > 0 and basis is None:
            self.add(
                node,
                "fee: a fee needs its legal `basis` (the regulation that sets it), "
                "so citizens and the inspectorate can check it",
            )
        collectors = []
        if "collected_by" in m:
            entries = self.names(m["collected_by"], "fee: ", "collected_by")
            if not entries and isinstance(m["collected_by"].value, list):
                self.add(
                    m["collected_by"],
                    "fee: `collected_by` is empty; name the roles that may record payments, "
                    "or leave it out for the role of the first step",
                )
            for _rid, entry in entries:
                rid = self.role_ref(entry, "fee: `collected_by`: ", roles)
                if rid is not None and rid not in collectors:
                    collectors.append(rid)
        return Fee(amount, basis, tuple(collectors), levy, billed_by if levy else None)

    def identified(
        self, node: Node, what: str, kind: str, keys: dict[str, bool]
    ) -> Iterator[tuple[str, dict[str, Node], str]]:
        """The entries of a list whose items each have a unique `id`: (id, keys, `where`).

        An entry that cannot be read, or repeats an id, is reported and passed over.
        """
        seen: dict[str, int] = {}
        for i, item in enumerate(self.items(node, "", what), 1):
            where = f"{kind} {i}: "
            m = self.mapping(item, keys, where)
            if m is None or "id" not in m:
                continue
            ident = self.slug(m["id"], where, "id", ID_SLUG)
            if ident is None:
                continue
            if ident in seen:
                self.add(
                    m["id"], f"{kind} id `{ident}` is used twice (first on line {seen[ident]})"
                )
                continue
            seen[ident] = m["id"].line
            yield ident, m, f"{kind} `{ident}`: "

    def charges(self, node: Node) -> tuple[Charge, ...]:
        out: list[Charge] = []
        for cid, m, where in self.identified(node, "charges", "charge", CHARGE_KEYS):
            name = self.opt(m, "name", self.text, where, cid)
            amount = (
                self.integer(m["amount"], where, "amount", 1, MAX_FEE) if "amount" in m else None
            )
            basis = self.opt(m, "basis", self.text, where, None)
            if amount is not None and basis is not None:
                out.append(Charge(cid, name, amount, basis))
        return tuple(out)

    def calendar(self, node: Node) -> CalendarSpec:
        if isinstance(node.value, str):
            if node.value in BUILTIN_CALENDARS:
                return BUILTIN_CALENDARS[node.value]
            self.add(
                node,
                f"calendar `{node.value}` is not known; use `id-working`, `24x7` "
                f"or an inline calendar{suggest(node.value, ('id-working', '24x7'))}",
            )
            return ID_WORKING
        where = "calendar: "
        m = self.mapping(node, CALENDAR_KEYS, where)
        if m is None:
            return ID_WORKING
        tz = self.opt(m, "timezone", self.text, where, "Asia/Jakarta")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            near = suggest(tz, ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"))
            self.add(m["timezone"], f"{where}time zone `{tz}` is not known{near}")
            tz = "Asia/Jakarta"
        # without `hours`: id-working's hours, breaks and Ramadan hours; with `hours`: those
        # hours, and breaks only where `breaks` sets them
        hours = self.hours(m["hours"]) if "hours" in m else ID_WORKING_HOURS
        if "breaks" in m:
            breaks = self.breaks(m["breaks"], hours)
        else:
            breaks = () if "hours" in m else ID_WORKING_BREAKS
        national, cuti_bersama = True, True
        if "holidays" in m:
            value = m["holidays"].value
            if value not in ("ID", "ID-national", "none"):
                self.add(
                    m["holidays"],
                    f"{where}`holidays` should be `ID` (Indonesia's national holidays and "
                    "cuti bersama), `ID-national` (national holidays only, for units that "
                    f"serve on cuti bersama) or `none`, not {_kind(value)}",
                )
            national = value != "none"
            cuti_bersama = value != "ID-national"
        extra: list[date] = []
        if "extra_holidays" in m:
            for item in self.items(m["extra_holidays"], where, "extra_holidays"):
                day = item.value
                if isinstance(day, str):
                    try:
                        day = date.fromisoformat(day)
                    except ValueError:
                        pass
                if isinstance(day, date):
                    extra.append(day)
                else:
                    self.add(item, f"{where}`{item.value}` is not a date; write it like 2026-09-10")
        return CalendarSpec(
            None,
            tz,
            hours,
            national,
            tuple(sorted(set(extra))),
            breaks=breaks,
            cuti_bersama=cuti_bersama,
            ramadan="hours" not in m,
            zone_fixed="timezone" in m,
        )

    def breaks(
        self, node: Node, hours: tuple[tuple[time, time] | None, ...]
    ) -> tuple[tuple[time, time] | None, ...]:
        where = "calendar: breaks: "
        if not isinstance(node.value, dict):
            self.add(node, f'{where}should map days to a break, like `mon-thu: "12:00-13:00"`')
            return ()
        week: list[tuple[time, time] | None] = [None] * 7
        for key, value in cast(dict[str, Node], node.value).items():
            pos = node.key_pos[key]
            for d in self.day_range(key, pos, where):
                span = self.span(value, where)
                if span is None:
                    continue
                if week[d] is not None:
                    self.add(pos, f"{where}{WEEKDAYS[d]} is given a break twice")
                    continue
                day = hours[d]
                if day is None:
                    self.add(pos, f"{where}{WEEKDAYS[d]} has no working hours to take a break from")
                    continue
                closes = time(23, 59, 59, 999999) if day[1] == time(0) else day[1]
                if not (day[0] < span[0] and span[1] < closes):
                    self.add(
                        value,
                        f"{where}the {WEEKDAYS[d]} break {value.value} should lie inside "
                        f"that day's hours ({day[0]:%H:%M}-{day[1]:%H:%M})",
                    )
                    continue
                week[d] = span
        return tuple(week) if any(week) else ()

    def hours(self, node: Node) -> tuple[tuple[time, time] | None, ...]:
        where = "calendar: hours: "
        if not isinstance(node.value, dict):
            self.add(node, f'{where}should map days to hours, like `mon-thu: "07:30-16:00"`')
            return ID_WORKING_HOURS
        week: list[tuple[time, time] | None] = [None] * 7
        before = len(self.problems)
        for key, value in cast(dict[str, Node], node.value).items():
            pos = node.key_pos[key]
            days = self.day_range(key, pos, where)
            span = self.span(value, where)
            for d in days:
                if week[d] is not None:
                    self.add(pos, f"{where}{WEEKDAYS[d]} is given hours twice")
                week[d] = span
        if not any(week) and len(self.problems) == before:
            self.add(node, f"{where}no day has working hours, so no deadline could ever fall")
        return tuple(week)

    def day_range(self, key: str, pos: tuple[int, int], where: str) -> list[int]:
        parts = key.lower().split("-")
        if len(parts) in (1, 2) and all(p in WEEKDAYS for p in parts):
            first, last = WEEKDAYS.index(parts[0]), WEEKDAYS.index(parts[-1])
            if first <= last:
                return list(range(first, last + 1))
        self.add(
            pos,
            f"{where}`{key}` is not a day or day range; use mon, tue, wed, thu, fri, "
            "sat, sun or a range like `mon-thu`",
        )
        return []

    def span(self, node: Node, where: str) -> tuple[time, time] | None:
        match = _HOURS.match(str(node.value)) if isinstance(node.value, str) else None
        if match:
            h1, m1, h2, m2 = map(int, match.groups())
            if h1 < 24 and m1 < 60 and m2 < 60 and (h2 < 24 or (h2, m2) == (24, 0)):
                opening, closing = time(h1, m1), time(h2 % 24, m2)
                if (h2, m2) == (24, 0) or closing > opening:
                    return opening, closing
                self.add(node, f"{where}`{node.value}` closes before it opens")
                return None
        self.add(
            node,
            f"{where}`{node.value}` should be opening and closing time in quotes, "
            'like "07:30-16:00"',
        )
        return None

    def fields(self, node: Node) -> tuple[FieldSpec, ...]:
        if not isinstance(node.value, dict):
            self.add(
                node, f"`fields` should map field names to their rules, not {_kind(node.value)}"
            )
            return ()
        out = []
        for name, spec in cast(dict[str, Node], node.value).items():
            where = f"field `{name}`: "
            if not NAME.match(name):
                self.add(
                    node.key_pos[name],
                    f"field name `{name}`: use only lowercase letters, digits and `_`",
                )
            m = self.mapping(spec, FIELD_KEYS, where)
            if m is None:
                continue
            ftype = self.opt(m, "type", self.text, where, "string")
            if ftype not in FIELD_TYPES:
                self.add(
                    m["type"],
                    f"{where}type `{ftype}` is not known; use one of "
                    f"{', '.join(FIELD_TYPES)}{suggest(ftype, FIELD_TYPES)}",
                )
                ftype = "string"
            pattern = self.opt(m, "pattern", self.text, where, None)
            if pattern is not None:
                if ftype != "string":
                    self.add(m["pattern"], f"{where}a `pattern` only applies to text fields")
                try:
                    compile_pattern(pattern)
                except PatternError as e:
                    self.add(m["pattern"], f"{where}{e}")
                    pattern = None
            out.append(
                FieldSpec(
                    name,
                    cast(FieldType, ftype),
                    self.opt(m, "required", self.boolean, where, False),
                    pattern,
                    self.opt(m, "pii", self.boolean, where, False),
                )
            )
            if not out[-1].pii and looks_personal(name, pattern):
                line, column = node.key_pos[name]
                self.warnings.append(
                    Problem(line, column, f"warning: field `{name}` looks like personal data "
                            "but is not marked `pii`; add `pii: true` so it is masked for the "
                            "inspectorate (its values are kept out of the audit trail anyway)")
                )  # fmt: skip
        return tuple(out)

    def requirements(
        self, node: Node, fields: tuple[FieldSpec, ...]
    ) -> tuple[Requirement, ...]:
        out: list[Requirement] = []
        for rid, m, where in self.identified(
            node, "requirements", "requirement", REQUIREMENT_KEYS
        ):
            name = self.opt(m, "name", self.text, where, rid)
            optional = self.opt(m, "optional", self.boolean, where, False)
            when = self.when(m["when"], where, fields) if "when" in m else ()
            out.append(Requirement(rid, name, optional, when))
        return tuple(out)

    def when(
        self, node: Node, where: str, fields: tuple[FieldSpec, ...]
    ) -> tuple[tuple[str, tuple[str | int | float | bool, ...]], ...]:
        where = f"{where}`when`: "
        if not isinstance(node.value, dict) or not node.value:
            self.add(
                node,
                f"{where}should map a field to the values it applies for, "
                "like `{jenis_permohonan: [pindah]}`",
            )
            return ()
        known = {f.name: f for f in fields}
        out = []
        for name, values in cast(dict[str, Node], node.value).items():
            if name not in known:
                self.add(
                    node.key_pos[name],
                    f"{where}field `{name}` is not declared under `fields`{suggest(name, known)}",
                )
                continue
            entries = [values] if not isinstance(values.value, list) else self.items(
                values, where, name
            )
            if not entries:
                self.add(values, f"{where}`{name}` lists no values; name at least one")
            picked: list[str | int | float | bool] = []
            for entry in entries:
                v = entry.value
                if v is None or isinstance(v, dict | list):
                    self.add(entry, f"{where}`{name}`: a value should be a plain value, "
                             f"not {_kind(v)}")  # fmt: skip
                else:
                    value = v if isinstance(v, str | int | float | bool) else str(v)
                    spec = known[name]
                    if spec.pattern and not (
                        isinstance(value, str) and matches(spec.pattern, value)
                    ):
                        self.add(
                            entry,
                            f"{where}`{value}` can never be the value of `{name}`: it does not "
                            f"match the field's pattern `{spec.pattern}`",
                        )
                    picked.append(value)
            out.append((name, tuple(picked)))
        return tuple(out)

    def roles(self, node: Node, opds: dict[str, str]) -> dict[str, str]:
        if not isinstance(node.value, dict):
            self.add(
                node, "`roles` should map each role id to its label, like `loket: Petugas Loket`"
            )
            return {}
        out = {}
        if not node.value:
            self.add(node, "`roles` is empty; every SOP needs at least one role")
        for rid, label in cast(dict[str, Node], node.value).items():
            if not ID_SLUG.match(rid):
                self.add(
                    node.key_pos[rid],
                    f"role id `{rid}`: use only lowercase letters, digits, `_` and `-`",
                )
                continue
            if isinstance(label.value, dict):
                # a role held by another office's staff: `{name: ..., opd: ...}`
                where = f"role `{rid}`: "
                m = self.mapping(label, ROLE_KEYS, where)
                if m is None:
                    continue
                out[rid] = self.opt(m, "name", self.text, where, rid)
                opd = self.slug(m["opd"], where, "opd", SOP_SLUG) if "opd" in m else None
                if opd is not None:
                    opds[rid] = opd
                continue
            out[rid] = self.text(label, f"role `{rid}`: ", "label") or rid
        return out

    def role_ref(self, node: Node, where: str, roles: dict[str, str]) -> str | None:
        rid = self.text(node, where, "role")
        if rid is not None and rid not in roles:
            self.add(
                node, f"{where}role `{rid}` is not declared under `roles`{suggest(rid, roles)}"
            )
            return None
        return rid

    def ladder(self, node: Node, where: str, roles: dict[str, str], day: int) -> tuple[Rung, ...]:
        out: list[Rung] = []
        for i, item in enumerate(self.items(node, where, "escalation"), 1):
            here = f"{where}rung {i}: "
            m = self.mapping(item, RUNG_KEYS, here)
            if m is None:
                continue
            percent: int | None = None
            after: Duration | None = None
            if "at" in m:
                at = m["at"].value
                match = _PERCENT.match(at) if isinstance(at, str) else None
                if match:
                    percent = int(match.group(1))
                    if percent == 0:
                        self.add(m["at"], f"{here}`at` must be more than 0%")
                else:
                    after = self.duration(m["at"], here, "at")
            action = self.opt(m, "action", self.text, here, "")
            if action and action not in ("warn", "escalate"):
                self.add(
                    m["action"],
                    f"{here}action `{action}` is not known; use `warn` or "
                    f"`escalate`{suggest(action, ('warn', 'escalate'))}",
                )
            to = None
            if "to" in m:
                to = self.role_ref(m["to"], here, roles)
                if action == "warn":
                    self.add(
                        m["to"],
                        f"{here}a `warn` rung notifies the step's own role; "
                        "`to` belongs on an `escalate` rung",
                    )
            elif action == "escalate":
                self.add(item, f"{here}an `escalate` rung needs `to`: the role it goes up to")
            flag = None
            if "flag" in m:
                flag = m["flag"].value
                if flag != "inspectorate":
                    self.add(m["flag"], f"{here}`flag` can only be `inspectorate`")
                    flag = None
            if action in ("warn", "escalate") and (percent or after):
                out.append(Rung(action, percent, after, to, flag))  # type: ignore[arg-type]
        self.rung_order(out, node, where, day)
        return tuple(out)

    def rung_order(
        self, rungs: Iterable[Rung], node: Node, where: str, day: int, sla: Duration | None = None
    ) -> None:
        """Rungs must come in increasing order of `at`.

        Without an sla only rungs of one kind compare (percent with percent, duration with
        duration); with one, percentages become that share of the sla. A working day counts
        as the calendar's longest day: an approximation that only serves ordering.
        """
        items = cast(list[Node], node.value) if isinstance(node.value, list) else []
        last: tuple[str, int, Rung] | None = None
        for index, rung in enumerate(rungs):
            if rung.after is not None:
                key = ("s", rung.after.nominal_seconds(day))
            elif sla is not None:
                key = ("s", sla.nominal_seconds(day) * (rung.percent or 0) // 100)
            else:
                key = ("%", rung.percent or 0)
            if last is not None and last[0] == key[0] and key[1] <= last[1]:
                self.add(
                    items[index] if index < len(items) else node,
                    f"{where}rung `at: {rung.label}` must come later than "
                    f"`at: {last[2].label}`; rungs go in increasing order",
                )
            last = (*key, rung)

    def steps(
        self, node: Node | None, roles: dict[str, str], day: int, ladder: tuple[Rung, ...]
    ) -> tuple[list[Step], dict[str, Node]]:
        if node is None:
            return [], {}
        out: list[Step] = []
        nodes: dict[str, Node] = {}
        entries = self.items(node, "", "steps")
        if isinstance(node.value, list) and not entries:
            self.add(node, "`steps` is empty; an SOP needs at least a first and a final step")
        for i, item in enumerate(entries, 1):
            m = self.mapping(item, STEP_KEYS, _label(item, "id", f"step {i}: ", "step"))
            if m is None or "id" not in m:
                continue
            sid = self.slug(m["id"], f"step {i}: ", "id", ID_SLUG)
            if sid is None:
                continue
            where = f"step `{sid}`: "
            if sid in nodes:
                self.add(
                    m["id"], f"step id `{sid}` is used twice (first on line {nodes[sid].line})"
                )
                continue
            nodes[sid] = m["id"]
            step = self.step(sid, m, item, where, roles, day, ladder)
            out.append(step)
        if out and out[0].final:
            self.add(
                nodes[out[0].id],
                f"step `{out[0].id}`: the first step is where every case "
                "starts, so it cannot be final",
            )
        if out and not any(s.final for s in out):
            self.add(node, "steps: no step is final (`final: true`), so no case could ever close")
        return out, nodes

    def step(
        self,
        sid: str,
        m: dict[str, Node],
        item: Node,
        where: str,
        roles: dict[str, str],
        day: int,
        ladder: tuple[Rung, ...],
    ) -> Step:
        name = self.opt(m, "name", self.text, where, sid)
        final = self.opt(m, "final", self.boolean, where, False)
        clock = self.opt(m, "clock", self.text, where, "running")
        if clock not in ("running", "paused"):
            self.add(m["clock"], f"{where}`clock` should be `running` or `paused`, not `{clock}`")
            clock = "running"
        role = self.role_ref(m["role"], where, roles) if "role" in m else None
        sla = self.opt(m, "sla", self.duration, where, None)
        outcome = self.opt(m, "outcome", self.text, where, None)
        output = self.opt(m, "output", self.text, where, None)
        if outcome is not None and outcome not in OUTCOMES:
            self.add(
                m["outcome"],
                f"{where}outcome `{outcome}` is not known; use `completed`, "
                f"`rejected` or `withdrawn`{suggest(outcome, OUTCOMES)}",
            )
            outcome = None
        if final:
            if "outcome" not in m:
                self.add(
                    item,
                    f"{where}a final step needs an `outcome`: completed, rejected or withdrawn",
                )
            for key in ("sla", "escalation"):
                if key in m:
                    self.add(m[key], f"{where}a final step ends the case, so it takes no `{key}`")
        elif "outcome" in m:
            self.add(m["outcome"], f"{where}only a final step (`final: true`) has an `outcome`")
        if clock == "paused":
            for key in ("sla", "escalation"):
                if key in m:
                    self.add(
                        m[key],
                        f"{where}the clock is paused here (the case waits on the "
                        f"citizen), so the step takes no `{key}`",
                    )
        elif not final and "role" not in m:
            self.add(item, f"{where}`role` is missing: say which role works on this step")
        escalation = None
        if "escalation" in m:
            escalation = self.ladder(m["escalation"], f"{where}escalation: ", roles, day)
            if escalation and sla is None and not final and clock != "paused":
                if any(r.percent is not None for r in escalation):
                    self.add(m["escalation"], f"{where}rungs in % need the step to have an `sla`")
        rungs = ladder if escalation is None else escalation
        kinds = {r.percent is None for r in rungs}
        # a ladder of one kind was ordered where it was read; mixed ones need this step's sla
        if sla is not None and not final and clock != "paused" and len(kinds) == 2:
            ladder_node = m.get("escalation", item)
            self.rung_order(rungs, ladder_node, where, day, sla)
        return Step(
            id=sid,
            name=name,
            role=role,
            sla=sla,
            clock=clock,  # type: ignore[arg-type]
            output=output,
            final=final,
            outcome=outcome,  # type: ignore[arg-type]
            escalation=escalation,
        )

    def transitions(
        self,
        node: Node | None,
        steps: list[Step],
        step_nodes: dict[str, Node],
        roles: dict[str, str],
        requirements: tuple[Requirement, ...],
        fee: Fee,
    ) -> list[Transition] | None:
        if node is None:
            return None
        by_id = {s.id: s for s in steps}
        req_ids = [r.id for r in requirements]
        out: list[Transition] = []
        seen: dict[tuple[str, str], int] = {}
        not_by_refs: list[tuple[str, Node, str]] = []
        entries = self.items(node, "", "transitions")
        if isinstance(node.value, list) and not entries:
            self.add(node, "`transitions` is empty; cases could never leave the first step")
        for i, item in enumerate(entries, 1):
            m = self.mapping(
                item, TRANSITION_KEYS, _label(item, "name", f"transition {i}: ", "transition")
            )
            if m is None or "name" not in m:
                continue
            name = self.slug(m["name"], f"transition {i}: ", "name", NAME)
            if name is None:
                continue
            where = f"transition `{name}`: "
            if name in RESERVED_TRANSITIONS:
                self.add(m["name"], f"{where}the name `{name}` is reserved; choose another")
            sources: list[str] = []
            edge_sources: list[str | None] = []
            for src, src_node in self.names(m["from"], where, "from") if "from" in m else []:
                if src not in by_id:
                    if src not in step_nodes:
                        self.add(
                            src_node,
                            f"transition `{name}` leaves from `{src}`, which is "
                            f"not a step{suggest(src, by_id)}",
                        )
                    edge_sources.append(None if src in step_nodes else _meant(src, by_id))
                    continue
                edge_sources.append(src)
                if by_id[src].final:
                    self.add(
                        src_node,
                        f"transition `{name}` leaves from `{src}`, a final step; "
                        "nothing may leave a final step",
                    )
                if (name, src) in seen:
                    self.add(
                        src_node,
                        f"transition `{name}` leaves step `{src}` twice (first on "
                        f"line {seen[(name, src)]}); give one of them another name",
                    )
                seen[(name, src)] = src_node.line
                sources.append(src)
            dest = ""
            edge_dest: str | None = None
            if "to" in m:
                dest = self.text(m["to"], where, "to") or ""
                edge_dest = dest or None
                if dest and dest not in by_id:
                    if dest not in step_nodes:
                        self.add(
                            m["to"],
                            f"transition `{name}` goes to `{dest}`, which is not "
                            f"a step{suggest(dest, by_id)}",
                        )
                    edge_dest = None if dest in step_nodes else _meant(dest, by_id)
                    dest = ""
            # the graph is checked in the same run: a misspelt step stands for the step it
            # most likely meant; an endpoint that means nothing leaves the graph unknown
            if edge_dest is None or None in edge_sources or not edge_sources:
                self.graph_known = False
            else:
                self.edges.extend((src, edge_dest) for src in edge_sources if src)
            role = self.role_ref(m["role"], where, roles) if "role" in m else None
            if role is None and "role" not in m:
                for src in sources:
                    if by_id[src].paused and by_id[src].role is None:
                        self.add(
                            item,
                            f"{where}step `{src}` has no role, so say who may fire "
                            "this transition with `role`",
                        )
            requires: list[str] = []
            for rid, rnode in (
                self.names(m["requires"], where, "requires") if "requires" in m else []
            ):
                if rid not in req_ids:
                    self.add(
                        rnode,
                        f"{where}requires `{rid}`, which is not listed under "
                        f"`requirements`{suggest(rid, req_ids)}",
                    )
                else:
                    requires.append(rid)
            not_by = []
            for other, onode in self.names(m["not_by"], where, "not_by") if "not_by" in m else []:
                not_by_refs.append((other, onode, where))
                not_by.append(other)
            comment = self.opt(m, "comment_required", self.boolean, where, False)
            payment = self.opt(m, "requires_payment", self.boolean, where, False)
            if payment and fee.free:
                self.add(
                    m["requires_payment"],
                    f"{where}`requires_payment` needs a fee, but this "
                    "service is free of charge (`fee.amount` is 0)",
                )
            if sources and dest:
                out.append(
                    Transition(
                        name,
                        tuple(sources),
                        dest,
                        role,
                        tuple(requires),
                        comment,
                        tuple(not_by),
                        payment,
                    )
                )
        names = {t.name for t in out} | {name for (name, _src) in seen}
        for other, onode, where in not_by_refs:
            if other not in names:
                self.add(
                    onode,
                    f"{where}`not_by` names `{other}`, which is not a transition"
                    f"{suggest(other, names)}",
                )
        return out

    def graph(
        self, steps: list[Step], nodes: dict[str, Node], transitions: list[Transition], tree: Node
    ) -> None:
        """Every step reachable from the first; a final step reachable from every step."""
        forward: dict[str, set[str]] = {s.id: set() for s in steps}
        backward: dict[str, set[str]] = {s.id: set() for s in steps}
        for src, dest in self.edges:
            if src in forward and dest in backward:
                forward[src].add(dest)
                backward[dest].add(src)
        reached = _closure({steps[0].id}, forward)
        closing = _closure({s.id for s in steps if s.final}, backward)
        # a final first step, or no final step at all, is reported where the steps are read;
        # what follows from it for every other step would only echo it
        if steps[0].final:
            reached = {s.id for s in steps}
        if not any(s.final for s in steps):
            closing = {s.id for s in steps}
        for s in steps:
            if s.id not in reached:
                self.add(
                    nodes[s.id],
                    f"step `{s.id}` cannot be reached from the first step "
                    f"`{steps[0].id}`; add a transition into it or remove it",
                )
            elif s.id not in closing:
                self.add(
                    nodes[s.id],
                    f"step `{s.id}`: no final step can be reached from here, "
                    "so a case that gets here could never close",
                )


def _label(item: Node, key: str, fallback: str, kind: str) -> str:
    """`step `x`: ` when the entry names itself, else `step 3: `."""
    if isinstance(item.value, dict):
        named = item.value.get(key)
        if isinstance(named, Node) and isinstance(named.value, str):
            return f"{kind} `{named.value}`: "
    return fallback


def _meant(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` most likely stands for, or None."""
    # 0.7: `warning` finds `warn` and `rekm` finds `rekam`, but `alamat` is not taken for `nama`
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
    return close[0] if close else None


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
