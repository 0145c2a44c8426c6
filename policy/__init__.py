"""Load and validate the policy catalog: YAML files in a folder, checked by the models in `model.py`.

A bad catalog fails fast with the file, the key (and its line) and the fix, the way pySigma's
errors point at the rule that broke (STYLE.md).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Collection, Hashable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ValidationError

from policy.model import Policy, key_form

log = logging.getLogger("lifemon.policy")

DEFAULT_DIR = Path(__file__).resolve().parent
SECTION_FILES = (
    "classification",
    "organisation",
    "retention",
    "sdks",
    "purposes",
    "recipients",
    "incidents",
    "storage",
)
# the detector params that map each rule (or reason) to its severity, titles and clauses: lifemon
# adds entries as it learns to judge more, and a bank's folder written before one still loads
RULE_MAPS = ("rules", "reasons")

_FIXES = {
    "missing": "add the key",
    "extra_forbidden": "remove the key or fix its spelling",
    "enum": "use one of the allowed values",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "use one of the allowed values",
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
    "less_than": "use a smaller number",
    "less_than_equal": "use a smaller number",
    "too_short": "add more entries",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "string_type": "write a text value",
    "dict_type": "write a mapping (key: value lines)",
    "list_type": "write a list (- item lines)",
}


class PolicyError(ValueError):
    """A policy file that cannot be used, with where and how to fix it."""

    def __init__(
        self,
        file: Path | str,
        key: str,
        message: str,
        fix: str,
        line: int | None = None,
        also: Sequence[PolicyError] = (),
    ):
        self.file, self.key, self.line, self.fix, self.message = str(file), key, line, fix, message
        self.also = list(also)  # the file's other errors: a user fixes them all in one go
        where = f"{file}:{line}" if line else str(file)
        more = "".join(
            f" Also{f' line {e.line},' if e.line else ''} {e.key or '(top level)'}: {e.message}. Fix: {e.fix}."
            for e in self.also
        )
        super().__init__(f"{where}: {key or '(top level)'}: {message}. Fix: {fix}.{more}")


# libyaml's parser when PyYAML has it: the policy loads in a tenth of the pure-Python time
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# list punctuation a Chinese input method types: YAML's flow list splits on `,` only, so
# `[loan_sys，ncbs]` is one item, and an id list silently names a system no one uses (probe_u2)
# (between two words: a section's 七、 ends its number)
_FULL_WIDTH_LIST = re.compile(r"(?<=[^\s，、；])[，、；](?=[^\s，、；])")


class _Refused(yaml.constructor.ConstructorError):
    """A value the loader refuses, with the message and fix its PolicyError says at its key."""

    def __init__(self, node: yaml.Node, message: str, fix: str):
        super().__init__(None, None, message, node.start_mark)
        self.node, self.message, self.fix = node, message, fix


def _one_item(node: yaml.Node, what: str) -> None:
    """Refuses a plain (unquoted) scalar holding full-width list punctuation where it reads as
    items run together: a quoted one is written so on purpose."""
    found = (
        _FULL_WIDTH_LIST.search(node.value) if isinstance(node, yaml.ScalarNode) and not node.style else None
    )
    if found:
        raise _Refused(
            node,
            f"{what} '{node.value}' holds a full-width {found[0]} (a Chinese input method's), which YAML "
            "reads as part of one item",
            "write `,` (ASCII) between items",
        )


def _date(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A date YAML reads, or the refusal of one no calendar has (2027-02-30: a traceback before)."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)  # type: ignore[no-untyped-call]
    except ValueError as e:
        raise _Refused(
            node, f"'{node.value}' is no real date ({e})", "write a real date YYYY-MM-DD"
        ) from None


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """Rejects a key given twice in one mapping: YAML would silently keep only the last one; and
    items run together by a full-width comma."""

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        if node.flow_style:
            for item in node.value:
                _one_item(item, "the list item")
        return super().construct_sequence(node, deep=deep)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            _one_item(key_node, "the key")
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):  # `? [a, b]`: YAML allows it, a mapping cannot hold it
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping used as a key", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice (first on line {seen[key]})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _date)


def _path_to(node: yaml.Node | None, target: yaml.Node) -> list[str | int] | None:
    """The key path of `target` (a node of a composed tree, found by its place in the text)."""
    at = target.start_mark.index
    if node is None:
        return None
    if node.start_mark.index == at and type(node) is type(target):
        return []
    pairs: list[tuple[str | int, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.start_mark.index == at:
                return [k.value]
            pairs.append((k.value, v))
    elif isinstance(node, yaml.SequenceNode):
        pairs = list(enumerate(node.value))
    for key, child in pairs:
        if child.start_mark.index <= at <= child.end_mark.index:
            found = _path_to(child, target)
            if found is not None:
                return [key, *found]
    return None


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """Line (1-based) of the key at `path` in a YAML text (the deepest reachable), or None."""
    return _line_of(yaml.compose(text, Loader=_UniqueKeyLoader), path) if text else None


def _line_of(node: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """Line (1-based) of the deepest YAML node reachable along `path`."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
            if node is None:
                return line
            line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def raise_validation(
    file: Path,
    exc: ValidationError,
    text: str,
    prefix: Sequence[str | int] = (),
    model: type[BaseModel] | None = None,
) -> None:
    """Turn pydantic's errors into a PolicyError that names file, key, line and fix of the first,
    and of each other error after it (a config with two wrong values said only the first)."""
    errors = [_policy_error(file, exc, err, text, prefix, model) for err in exc.errors()]
    # a misspelt key is one error (missing, and extra), said once with its rename
    renames = {e.fix for e in errors if e.fix.startswith("rename ")}
    errors = [
        e for i, e in enumerate(errors) if e.fix not in renames or e.fix not in {f.fix for f in errors[:i]}
    ]
    first = errors[0]
    raise PolicyError(first.file, first.key, first.message, first.fix, first.line, errors[1:])


def _policy_error(
    file: Path,
    exc: ValidationError,
    err: Any,
    text: str,
    prefix: Sequence[str | int] = (),
    model: type[BaseModel] | None = None,
) -> PolicyError:
    """One pydantic error as a PolicyError: file, key, line and fix."""
    loc = [*prefix, *err["loc"]]
    message = err["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(err["type"], "correct the value")
    if err["type"] == "value_error":
        # cross-reference checks say "<dotted key> <problem>; <fix>": point at that key's line
        head, _, advice = message.partition("; ")
        first = head.split(" ", 1)[0]
        if "." in first:
            loc = [
                *loc,
                *(int(p) if p.isdigit() else p for p in first.replace("[", ".").replace("]", "").split(".")),
            ]
            head = head.split(" ", 1)[1] if " " in head else head
        message, fix = head, advice or "see the message"
    if err["type"] in ("missing", "extra_forbidden"):
        fix = _spelling_fix(exc, err, fix, model)
    root = yaml.compose(text, Loader=_UniqueKeyLoader) if text else None
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        fix += f": {ctx['expected']}"
    elif "pattern" in ctx:
        fix += f" (pattern {ctx['pattern']})"
    return PolicyError(file, ".".join(map(str, loc)), message, fix, _line_of(root, loc))


def _known_keys(model: type[BaseModel] | None, path: Sequence[Any]) -> list[str]:
    """The keys a (nested) model accepts at `path`, for "did you mean" hints."""
    for part in path:
        field = model.model_fields.get(str(part)) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return [f.alias or name for name, f in model.model_fields.items()] if model else []


def _spelling_fix(exc: ValidationError, err: Any, fix: str, model: type[BaseModel] | None) -> str:
    """A key that is both missing and present under a near spelling is a typo: say which."""
    parent = err["loc"][:-1]
    other = "extra_forbidden" if err["type"] == "missing" else "missing"
    candidates = [str(e["loc"][-1]) for e in exc.errors() if e["type"] == other and e["loc"][:-1] == parent]
    if err["type"] == "extra_forbidden":
        candidates += _known_keys(model, parent)
    close = difflib.get_close_matches(str(err["loc"][-1]), candidates, n=1)
    if not close:
        return fix
    missing, extra = (err["loc"][-1], close[0]) if err["type"] == "missing" else (close[0], err["loc"][-1])
    return f"rename `{extra}` to `{missing}`"


def read_yaml(path: Path) -> tuple[Any, str]:
    if not path.is_file():
        raise PolicyError(
            path, "", "file not found", f"create {path.name} or point --policy at a folder that has it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(path, "", f"not UTF-8 text (byte {e.start})", "save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader) or {}, text  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise PolicyError(path, "", "nested too deeply", "flatten the YAML") from None
    except _Refused as e:
        where = _path_to(yaml.compose(text, Loader=_UniqueKeyLoader), e.node) or []
        line = e.node.start_mark.line + 1
        raise PolicyError(path, ".".join(map(str, where)), e.message, e.fix, line) from None
    except yaml.YAMLError as e:
        raise PolicyError(path, "", *_yaml_problem(e)) from None


def _yaml_problem(e: yaml.YAMLError) -> tuple[str, str, int | None]:
    """(message, fix, line) of a YAML syntax error. The parser notices a bracket left open on the
    line after it: the line the bracket opened on is named too (a probe's line 5 error read line 6)."""
    mark, opened = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
    where = (
        f"; {getattr(e, 'context', '')} on line {opened.line + 1}"
        if opened is not None and mark is not None and opened.line != mark.line
        else ""
    )
    return (
        f"not valid YAML ({getattr(e, 'problem', e)}{where})",
        "fix the YAML syntax",
        mark.line + 1 if mark else None,
    )


def validate_section(
    file: Path, model: type[BaseModel], data: Any, text: str, prefix: Sequence[str] = ()
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise_validation(file, e, text, prefix, model)


def _traffic(folder: Path, sdks: Any) -> dict[str, Any]:
    """What `Policy` takes from traffic.yaml: the key names of each SDK field, checked against `sdks`,
    and the bank's own hosts; none where a bank's folder has no traffic.yaml (its SDK fields are then
    known by id and the privacy policy's words only)."""
    from policy.traffic import TRAFFIC_FILE, load_traffic

    if not (folder / TRAFFIC_FILE).is_file():
        return {}
    traffic = load_traffic(folder, sdks)
    return {
        "vocabulary": {fid: tuple(entry.keys) for fid, entry in traffic.fields.items()},
        "first_party_hosts": tuple(traffic.first_party_hosts),
    }


def _sources(folder: Path, sections: dict[str, Any]) -> dict[str, Any]:
    """What `Policy` takes from sources.yaml: its service accounts, its databases' column maps by
    system; none where a bank's folder has no sources.yaml."""
    from policy.sources import SOURCES_FILE, load_sources

    if not (folder / SOURCES_FILE).is_file():
        return {}
    organisation = sections["organisation"]
    mapping = load_sources(folder, sections["classification"], sections["purposes"].purposes, organisation)
    systems = organisation.system_names()
    tables: dict[str, dict[str, dict[str, str]]] = {}
    for db in mapping.databases.values():
        on = tables.setdefault(systems.get(key_form(db.system), db.system), {})
        on.update({name: t.columns for name, t in db.tables.items() if t.columns})
    return {"service_accounts": mapping.service_accounts(), "table_columns": tables}


CALENDAR_FILE = "calendar.yaml"


def _calendar(folder: Path, zone: str) -> dict[str, Any]:
    """What `Policy` takes from calendar.yaml: the rest days a deadline's last day moves past (Civil
    Code art. 203 ¶1). A folder without it (written before lifemon read it) moves none, as before,
    said; one whose years stop before this one's moves no holiday of this year, said too: the
    State Council announces each year's in November of the year before, and the bank copies it."""
    from policy.model import Calendar

    path = folder / CALENDAR_FILE
    if not path.is_file():
        log.warning(
            f"{path} is missing (added to lifemon since the folder was written): no deadline moves past "
            "a weekend or a public holiday its last day falls on (Civil Code art. 203 ¶1), and deletion "
            f"requests due in a holiday are overdue in it; copy {DEFAULT_DIR / CALENDAR_FILE} there and "
            "add each year's State Council holiday notice",
            extra={"file": str(path), "key": "", "added": ["calendar"]},
        )
        return {}
    data, text = read_yaml(path)
    calendar: Calendar = validate_section(path, Calendar, data, text)
    year = datetime.now(ZoneInfo(zone)).year  # the bank's year: in Beijing 2027 begins at 16:00 UTC
    if not calendar.announces(year):
        log.warning(
            f"{path}: years lists no {year}: no deadline moves past a {year} public holiday (Civil Code "
            f"art. 203 ¶1); add {year} from the State Council's holiday notice",
            extra={"file": str(path), "key": "years", "added": []},
        )
    return {"calendar": calendar}


def load_policy(directory: Path | str | None = None) -> Policy:
    """Load `classification/organisation/retention/sdks/purposes.yaml` and `detectors/*.yaml` from a folder."""
    folder = Path(directory) if directory else DEFAULT_DIR
    if not folder.is_dir():  # a mistyped path is no folder missing a file
        raise PolicyError(
            folder,
            "",
            "no such folder" if not folder.exists() else "not a folder",
            "point --policy (or the config's policy_dir) at the folder holding classification.yaml and the "
            "other policy files, or leave it out for the built-in policy",
        )
    model_fields = Policy.model_fields
    sections: dict[str, Any] = {}
    texts: dict[str, str] = {}
    cite = _citations(folder / "references.yaml")
    # a bank's own folder: the built-in files are the rules it may lack, read with their citations
    shipped = None if folder.resolve() == DEFAULT_DIR else _citations(DEFAULT_DIR / "references.yaml")
    for name in SECTION_FILES:
        path = folder / f"{name}.yaml"
        data, texts[name] = read_yaml(path)
        data = cite(data)
        if name == "incidents" and shipped is not None:
            data = _with_added_classes(path, data, shipped)
        if name == "classification" and shipped is not None:
            data = _with_marks(path, data)
        if (
            name == "organisation"
            and shipped is not None
            and isinstance(data, dict)
            and "head_office" not in data
        ):
            # not applied as shipped: the bank's head office is its own id (a review's folder lost
            # the org-path completion silently)
            log.warning(
                f"{path}: no head_office (added to lifemon since the file was written): an org_path a "
                "feed writes without the head office is read as written, the org at the head office's "
                f"depth; add `head_office: <your head office's org id>` (see {DEFAULT_DIR / path.name})",
                extra={"file": str(path), "key": "head_office", "added": ["head_office"]},
            )
        sections[name] = validate_section(path, model_fields[name].annotation, data, texts[name])  # type: ignore[arg-type]
    _check_purposes(folder, sections["classification"], sections["purposes"])
    _check_contract_categories(folder / "recipients.yaml", texts["recipients"], sections)
    _check_retention(folder, sections["retention"], sections["classification"], sections["purposes"])
    from policy.model import DetectorSection

    detectors = {}
    for path in sorted((folder / "detectors").glob("*.yaml")):
        data, text = read_yaml(path)
        data = cite(data) if shipped is None else _with_added_rules(path, cite(data), shipped)
        detectors[path.stem] = validate_section(path, DetectorSection, data, text)
    if shipped is not None:
        detectors |= _added_detectors(folder, set(detectors), shipped)
    try:
        return Policy(
            **sections,
            detectors=detectors,
            **_traffic(folder, sections["sdks"]),
            **_sources(folder, sections),
            **_calendar(folder, sections["recipients"].timezone),
        )
    except ValidationError as e:  # the one cross-file check: organisation.yaml names catalog ids
        raise_validation(folder / "organisation.yaml", e, texts["organisation"])
        raise


def _say_added(path: Path, key: str, added: list[str], shipped_path: Path) -> None:
    """The warning that a bank's file lacks what lifemon added since, now applied as shipped."""
    log.warning(
        f"{path}: {key} lacks {', '.join(added)}, added to lifemon since the file was written: they "
        f"apply as lifemon ships them; copy them from {shipped_path} to review them",
        extra={"file": str(path), "key": key, "added": added},
    )


def _with_added_rules(path: Path, data: Any, cite_shipped: Callable[[Any], Any]) -> Any:
    """A bank's detector file written before lifemon added a rule (or reason) still loads: each
    rule it lacks applies as lifemon ships it, and a warning names the file, the rules and where
    to copy them from. Refusing to start after an upgrade would stop the monitoring itself."""
    shipped_path = detector_file(path.stem)
    params = data.get("params") if isinstance(data, dict) else None
    if not shipped_path.is_file() or not isinstance(params, dict):
        return data
    shipped = cite_shipped(read_yaml(shipped_path)[0]).get("params", {})
    # a setting added since applies as shipped (a new file's `identifiers`: without it a bank's
    # folder would let a batch of names flagged de-identified pass as before)
    # a key lacking beside one spelt like it is a typo, which validation says: not a setting added
    # since (a probe's `window_minutess` first read as window_minutes added by an upgrade)
    unknown = [key for key in params if key not in shipped]
    new = [
        key for key in shipped if key not in params and not difflib.get_close_matches(key, unknown, 1, 0.8)
    ]
    if new:
        params = {**params, **{key: shipped[key] for key in new}}
        _say_added(path, "params", new, shipped_path)
    for key in RULE_MAPS:
        theirs, ours = params.get(key), shipped.get(key)
        if not (isinstance(theirs, dict) and isinstance(ours, dict)):
            continue
        added = [rule for rule in ours if rule not in theirs]
        if added:
            params = {**params, key: {**theirs, **{rule: ours[rule] for rule in added}}}
            _say_added(path, f"params.{key}", added, shipped_path)
    return {**data, "params": params}


# marks lifemon added to classification.yaml since banks began keeping their own: (block, mark,
# what a warning calls the entries, what the mark says, what a folder whose own ids take no shipped
# mark loses, where that is worth a warning)
ADDED_MARKS = (
    ("categories", "sensitive", "category", "is sensitive", None),  # 敏感个人信息, seed 004 定义(10)
    ("fields", "payment_sensitive", "field", "is payment-sensitive", None),  # 支付敏感信息, seed 002 §四(3)
    # what a message is addressed with (offscope_marketing: a push naming it was not targeted by it);
    # a second bank names its name and number fields its own way, and its name-only greetings became
    # personalized pushes
    (
        "fields",
        "addresses",
        "field",
        "addresses a message",
        "a marketing push naming the customer's name or number is read as targeted by it; mark your "
        "name and number fields `addresses: true`",
    ),
)


def _with_marks(path: Path, data: Any) -> Any:
    """A bank's classification.yaml written before lifemon added a mark (which categories are
    sensitive, which fields payment-sensitive or address a message) marks none: its entries of the
    shipped ids take the shipped mark, said. Without it the rules the mark drives would pass
    silently in its folder (or, for what addresses a message, their verdicts change unsaid)."""
    shipped = read_yaml(DEFAULT_DIR / path.name)[0]
    for block, mark, entry, says, loses in ADDED_MARKS:
        theirs = data.get(block) if isinstance(data, dict) else None
        if not isinstance(theirs, dict) or any(isinstance(e, dict) and mark in e for e in theirs.values()):
            continue
        ours = shipped.get(block, {})
        marked = [k for k, e in theirs.items() if isinstance(e, dict) and ours.get(k, {}).get(mark)]
        if not marked:
            if loses:
                log.warning(
                    f"{path}: no {entry} {says} (`{mark}`, added to lifemon since the file was "
                    f"written): {loses}",
                    extra={"file": str(path), "key": block, "added": []},
                )
            continue
        log.warning(
            f"{path}: no {entry} says whether it {says} (`{mark}`, added to lifemon since the file "
            f"was written): {', '.join(marked)} are, as lifemon ships them; mark them in the file to review",
            extra={"file": str(path), "key": block, "added": marked},
        )
        data = {**data, block: {k: {**e, mark: True} if k in marked else e for k, e in theirs.items()}}
    return data


def _with_added_classes(path: Path, data: Any, cite_shipped: Callable[[Any], Any]) -> Any:
    """A bank's incidents.yaml written before lifemon added a leakage class still opens its
    incidents: each class it lacks applies as lifemon ships it, after its own, and a warning names
    them (an upgrade probe's folder silently lost the undeclared_host incidents: the alert stayed,
    nobody was paged)."""
    shipped_path = DEFAULT_DIR / path.name
    theirs = data.get("classes") if isinstance(data, dict) else None
    ours = cite_shipped(read_yaml(shipped_path)[0]).get("classes", {})
    if not isinstance(theirs, dict):
        return data
    added = [c for c in ours if c not in theirs]
    if not added:
        return data
    _say_added(path, "classes", added, shipped_path)
    return {**data, "classes": {**theirs, **{c: ours[c] for c in added}}}


# detectors lifemon added after banks began keeping their own policy folders: a folder without one
# was written before it. Any other detector file missing is a folder damaged, and refused.
ADDED_DETECTORS = ("deleted_record_use", "shared_account", "shared_workstation")


def _added_detectors(folder: Path, present: set[str], cite_shipped: Callable[[Any], Any]) -> dict[str, Any]:
    """A bank's folder written before lifemon added a detector runs it as lifemon ships it, and a
    warning says so, as for an added rule: copy the file to review it, or with `enabled: false`
    to switch the detector off."""
    from policy.model import DetectorSection

    added = {}
    for kind in (k for k in ADDED_DETECTORS if k not in present):
        path, theirs = detector_file(kind), detector_file(kind, folder)
        data, text = read_yaml(path)
        added[kind] = validate_section(path, DetectorSection, cite_shipped(data), text)
        log.warning(
            f"{theirs} is missing: the {kind} detector, added to lifemon since the folder was "
            f"written, runs as lifemon ships it; copy {path} there to review it, or copy it with "
            "`enabled: false` to switch the detector off",
            extra={"file": str(theirs), "key": "", "added": [kind]},
        )
    return added


# a key of references.yaml: a document, or the start of a section of one (`seed 004 机构设置`)
_KEY = re.compile(r"(?P<seed>seed \d{3})(?: (?P<section>\S+))?")


def _section(key: str) -> str:
    """The section a references.yaml key starts ('' for a whole document's)."""
    found = _KEY.fullmatch(key)
    return (found["section"] or "") if found else ""


def _citations(path: Path) -> Any:
    """A function that puts each document's citation (references.yaml) for its "seed NNN" in every
    string of a loaded YAML tree: a section's own document where a key names the section's start
    (the longest that matches), the section kept; in English under a key `en` or ending `_en` (a
    clause's, a title's, a runbook's), where the file gives one. A policy folder without the file
    keeps the short form."""
    if not path.is_file():
        return lambda data: data
    documents, _ = read_yaml(path)
    both = {k: _both(v) for k, v in documents.items()} if isinstance(documents, dict) else {}
    cited = {k: v for k, v in both.items() if isinstance(k, str) and _KEY.fullmatch(k) and v is not None}
    if not isinstance(documents, dict) or len(cited) != len(both):
        raise PolicyError(
            path,
            "",
            "not a map of `seed NNN: citation` (or `seed NNN section: citation`)",
            "write one line per document, e.g. `seed 004: {zh: 本行《…》, en: the bank's … (本行《…》)}`, "
            "or one citation for both languages: `seed 004: 本行《…》`",
        )
    keys = sorted(cited, key=len, reverse=True)
    # a document's key ends at a word's end; a section's may run on into its numbering (机构设置(1))
    citation = re.compile("|".join(rf"\b{re.escape(k)}" + ("" if _section(k) else r"\b") for k in keys))

    def put(m: re.Match[str], language: int) -> str:
        key = m.group()
        return cited[key][language] + (f" {_section(key)}" if _section(key) else "")

    def cite(data: Any, language: int = 0) -> Any:
        if isinstance(data, str):
            return citation.sub(lambda m: put(m, language), data) if keys else data
        if isinstance(data, list):
            return [cite(v, language) for v in data]
        if isinstance(data, dict):
            return {k: cite(v, language or int(_english(k))) for k, v in data.items()}
        return data

    return cite


def _both(value: Any) -> tuple[str, str] | None:
    """A references.yaml citation as (zh, en): `{zh, en}`, or one string for both; None if neither."""
    if isinstance(value, str) and value.strip():
        return value, value
    if (
        isinstance(value, dict)
        and set(value) == {"zh", "en"}
        and all(isinstance(v, str) and v.strip() for v in value.values())
    ):
        return value["zh"], value["en"]
    return None


def _english(key: Any) -> bool:
    """A YAML key whose value is English: a clause's or a runbook's `en`, a `title_en`."""
    return isinstance(key, str) and (key == "en" or key.endswith("_en"))


def _check_purposes(folder: Path, classification: Any, purposes: Any) -> None:
    """Every catalog field says what it was collected for, so an off-purpose use can be seen."""
    missing = [f for f in classification.fields if f not in purposes.collected_for]
    unknown = [f for f in purposes.collected_for if f not in classification.fields]
    path = folder / "purposes.yaml"
    if missing:
        raise PolicyError(
            path,
            "collected_for",
            f"catalog fields {missing} have no collection purpose",
            "add each under `collected_for` with the purpose ids it was collected for",
        )
    if unknown:
        _, text = read_yaml(path)
        raise PolicyError(
            path,
            f"collected_for.{unknown[0]}",
            f"'{unknown[0]}' is not a field of classification.yaml",
            "fix its spelling or add the field to classification.yaml",
            _line_of(yaml.compose(text, Loader=_UniqueKeyLoader), ["collected_for", unknown[0]]),
        )
    strange = [
        c
        for c in purposes.own_purpose_only
        if c not in classification.categories and c not in classification.fields
    ]
    if strange:
        raise PolicyError(
            path,
            "own_purpose_only",
            f"'{strange[0]}' is neither a field nor a category of classification.yaml",
            f"use field or category ids (categories: {', '.join(classification.categories)})",
        )


def _check_contract_categories(path: Path, text: str, sections: dict[str, Any]) -> None:
    """A contract covers data categories of the catalog, and a clearing house clears purposes of
    purposes.yaml: an unknown id would cover nothing. What a processor may get in clear
    (`identifiable`) is data its contract covers: one of its categories, or a field of one (the card
    bureau's name and card number, not every identity and account field)."""
    classification = sections["classification"]
    categories = ("unknown category", "a category id from classification.yaml", classification.categories)
    purposes = ("unknown purpose", "a purpose id from purposes.yaml", sections["purposes"].purposes)
    for rid, recipient in sections["recipients"].recipients.items():
        named: list[tuple[list[str | int], str, tuple[str, str, Collection[str]]]] = [
            (["contracts", i, "categories"], cat, categories)
            for i, contract in enumerate(recipient.contracts)
            for cat in contract.categories
        ]
        named += [(["clearing_purposes"], purpose, purposes) for purpose in recipient.clearing_purposes]
        for i, contract in enumerate(recipient.contracts):
            covered = set(contract.categories) | {
                fid for fid, f in classification.fields.items() if f.category in contract.categories
            }
            what = (
                f"neither a category of contract {contract.id} nor a field of one",
                "a category it lists or a field of classification.yaml in one",
                covered,
            )
            named += [(["contracts", i, "identifiable"], data, what) for data in contract.identifiable]
        for where, value, (problem, fix, known) in named:
            if value not in known:
                key = ["recipients", rid, *where]
                root = yaml.compose(text, Loader=_UniqueKeyLoader)
                raise PolicyError(
                    path,
                    ".".join(map(str, key)),
                    f"{problem} '{value}'" if problem.startswith("unknown") else f"'{value}' is {problem}",
                    f"use {fix}: {', '.join(sorted(known))}",
                    _line_of(root, key),
                )


def _check_retention(folder: Path, retention: Any, classification: Any, purposes: Any) -> None:
    """Retention rules and minimums name the catalog's category and purpose ids, the client and
    foreign C3 lists its field ids (a typo would leave data unruled)."""
    path = folder / "retention.yaml"
    named = [
        (f"{section}.{rid}.{where}", ids, known)
        for section, rules in (("rules", retention.rules), ("minimums", retention.minimums))
        for rid, rule in rules.items()
        for where, ids, known in (
            ("categories", rule.categories, classification.categories),
            ("purposes", rule.purposes, purposes.purposes),
        )
    ] + [
        (key, getattr(retention, key) or [], purposes.purposes)
        for key in ("relationship_purposes", "account_purposes", "owed_after_end", "contract_purposes")
    ]
    named += [
        (f"collection_consent.{i}.{where}", ids, known)
        for i, need in enumerate(retention.collection_consent)
        for where, ids, known in (
            ("categories", need.categories, classification.categories),
            ("purposes", need.purposes, purposes.purposes),
        )
    ]
    for key, ids, known in named:
        unknown = [i for i in ids if i not in known]
        if unknown:
            what = "category" if key.endswith("categories") else "purpose"
            raise PolicyError(
                path,
                key,
                f"'{unknown[0]}' is not a known {what} id",
                f"use one of {', '.join(known)}",
                _key_line(path, key),
            )
    # the card secrets and biometrics a client never stores, and the C3 never kept for another
    # institution, are the catalog's field ids: the shipped card_track_data in a bank's folder
    # whose catalog says track_data matched nothing, and the critical rules went silent (probe_u2)
    c3 = [fid for fid, f in classification.fields.items() if f.jr_class == "C3"]
    wrong = [
        PolicyError(
            path,
            key,
            f"names {unknown}, not field ids of classification.yaml",
            f"use field ids of classification.yaml; its C3 fields are {', '.join(c3) or 'none'}",
            _key_line(path, key),
        )
        for key in ("client_secrets", "never_on_client", "forbidden_foreign_c3")
        if (unknown := [i for i in getattr(retention, key) or [] if i not in classification.fields])
    ]
    if wrong:  # all three at once: a copied file has them all wrong
        first = wrong[0]
        raise PolicyError(first.file, first.key, first.message, first.fix, first.line, wrong[1:])
    # an account's opening begins the relationship its closure ends: an account purpose beginning
    # none would make a returning customer's new account "collected after the relationship ended"
    outside = [p for p in retention.account_purposes or [] if p not in retention.relationship_purposes]
    if outside:
        raise PolicyError(
            path,
            "account_purposes",
            f"'{outside[0]}' is not in relationship_purposes, but an account's opening begins a relationship",
            f"add '{outside[0]}' to relationship_purposes too, or remove it from account_purposes",
            _key_line(path, "account_purposes"),
        )


def _key_line(path: Path, key: str) -> int | None:
    """The line of a dotted key (`rules.kyc.purposes`, `collection_consent.0.categories`) in a file."""
    _, text = read_yaml(path)
    return _line_of(
        yaml.compose(text, Loader=_UniqueKeyLoader), [int(k) if k.isdigit() else k for k in key.split(".")]
    )


def detector_file(kind: str, directory: Path | str | None = None) -> Path:
    return (Path(directory) if directory else DEFAULT_DIR) / "detectors" / f"{kind}.yaml"
