"""The workload generator: deterministic, valid records, files that round-trip, and ground truth that
matches what the rules see: each real detector, scored as `lifemon demo` scores it, fires for exactly
the injected violations, and the normal traffic's near misses stay silent."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastavro
import pytest

from detectors import load_detectors
from detectors.offscope_marketing import Rule
from policy import load_policy
from policy.catalog import Catalog
from policy.model import Policy
from schemas.models import EVENT_MODELS, REFERENCE_STREAMS, STREAM_KEYS
from schemas.structs import from_model
from streams.alerts import latest
from streams.codecs import RawRecord
from streams.demo import named_as_alerts, score
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.workload import Workload, generate, read_truth, write_files
from streams.workload.base import AML_HITS, BACK_OFFICE_FILES, LIST_CALLERS, LIST_CALLS

SHARES = {"access": 0.70, "sdk": 0.12, "marketing": 0.08, "lifecycle": 0.07, "transfer": 0.03}
DETECTOR_STREAM = {
    "bulk_query": "access",
    "unauthorized_lookup": "access",
    "retention_overrun": "lifecycle",
    "deleted_record_use": "lifecycle",  # its clock starts at the record's deletion
    "offscope_marketing": "marketing",
    "sdk_overcollection": "sdk",
    "transfer_policy": "transfer",
    "shared_account": "access",
    "shared_workstation": "access",
}
# a detector whose truth key is an attribute of its stream's records other than the topic key
TRUTH_KEY = {"shared_workstation": "client_ip"}
DAY = 86_400_000


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def small(policy: Policy) -> Workload:
    return generate(2000, seed=7, policy=policy)


@pytest.fixture(scope="module", params=[2000, 50_000], ids=["2k", "50k"])
def sized(request: pytest.FixtureRequest, policy: Policy, small: Workload) -> tuple[int, Workload]:
    """(events, workload): the smallest useful size, and one where violations scale (1 per 10k)."""
    return request.param, small if request.param == 2000 else generate(request.param, seed=3, policy=policy)


@pytest.fixture
def wl(sized: tuple[int, Workload]) -> Workload:
    return sized[1]


def stream(wl: Workload, name: str) -> list[Any]:
    return [r for s, _, r in wl.records if s == name]


def truth_of(wl: Workload, detector: str) -> set[tuple[str, int]]:
    return {(v["key"], v["ts_start"]) for v in wl.truth if v["detector"] == detector}


class AsOf:
    """Reference records by key, looked up as of an event's time."""

    def __init__(self, records: list[Any], key: str):
        self.hist: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for r in records:
            self.hist[getattr(r, key)].append((r.ts, r))
        for h in self.hist.values():
            h.sort(key=lambda x: x[0])

    def as_of(self, key: str, ts: int) -> Any:
        h = self.hist.get(key, [])
        i = bisect_right([t for t, _ in h], ts)
        return h[i - 1][1] if i else None


# -- shape ------------------------------------------------------------------------------------------
def test_deterministic(policy: Policy, small: Workload) -> None:
    again = generate(2000, seed=7, policy=policy)
    assert again.records == small.records and again.truth == small.truth and again.bank == small.bank
    other = generate(2000, seed=8, policy=policy)
    assert other.records != small.records and other.truth != small.truth


def test_records_are_valid_models(wl: Workload) -> None:
    for s, key, rec in wl.records:
        model = EVENT_MODELS[s]
        assert type(rec) is model and key == getattr(rec, STREAM_KEYS[s])
        assert model.model_validate(rec.model_dump(mode="json")) == rec
    ids = [r.event_id for s, _, r in wl.records if s not in REFERENCE_STREAMS]
    assert len(ids) == len(set(ids))
    # no record id holds a run the door reads as a personal number (R14459476613c: a phone's)
    assert not [r.record_id for r in stream(wl, "lifecycle") if re.search(r"[0-9]{11}", r.record_id)]


def test_order_and_mix(sized: tuple[int, Workload]) -> None:
    events, wl = sized
    kinds = [s for s, _, _ in wl.records]
    n_ref = sum(s in REFERENCE_STREAMS for s in kinds)
    assert set(kinds[:n_ref]) == set(REFERENCE_STREAMS)
    ts = [r.ts for _, _, r in wl.records[n_ref:]]
    assert ts == sorted(ts)
    counts = Counter(kinds[n_ref:])
    assert abs(sum(counts.values()) - events) <= events * 0.01
    for name, share in SHARES.items():
        assert abs(counts[name] / events - share) < 0.01, name
    assert wl.bank["employees"] >= 50 and wl.bank["customers"] >= 200 and wl.bank["branches"] >= 3


def test_access_per_actor_time_never_goes_back(wl: Workload) -> None:
    last: dict[str, int] = {}
    for ev in stream(wl, "access"):
        assert ev.ts >= last.get(ev.actor_id, 0)
        last[ev.actor_id] = ev.ts


def test_truth_covers_every_detector(sized: tuple[int, Workload]) -> None:
    events, wl = sized
    by = Counter(v["detector"] for v in wl.truth)
    assert set(by) == set(DETECTOR_STREAM)
    assert min(by.values()) >= max(2, events // 10_000)
    assert [v["id"] for v in wl.truth] == [f"V{i:04d}" for i in range(1, len(wl.truth) + 1)]
    for v in wl.truth:
        assert v["ts_start"] <= v["ts_end"] and v["rule"] and v["description"]
        # the offending (or clock-starting) event is in the detector's stream under the truth key
        attr = TRUTH_KEY.get(v["detector"])
        assert any(
            (getattr(r, attr) if attr else key) == v["key"] and r.ts == v["ts_start"]
            for s, key, r in wl.records
            if s == DETECTOR_STREAM[v["detector"]]
        ), v


@pytest.mark.parametrize("fmt", ["jsonl", "avro"])
def test_files_round_trip(small: Workload, tmp_path, fmt: str) -> None:
    wl = small
    paths = write_files(wl, tmp_path, fmt)
    assert {p.name for p in paths} == {f"pfi.{s}.{fmt}" for s in EVENT_MODELS} | {"truth.json"}
    for s, model in EVENT_MODELS.items():
        expected = stream(wl, s)
        path = tmp_path / f"pfi.{s}.{fmt}"
        if fmt == "jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        else:
            with path.open("rb") as fo:
                rows = list(fastavro.reader(fo))
        assert len(rows) == len(expected), s
        assert [model.model_validate(rows[i]) for i in (0, -1)] == [expected[0], expected[-1]]
    assert read_truth(tmp_path / "truth.json") == wl.truth


def test_the_demos_truth_names_customers_as_its_alerts_do(small: Workload, policy: Policy) -> None:
    """`lifemon demo` writes its truth.json beside its report: no customer id in it, synthetic or
    not (a probe found 31), each subject the pseudonym its alert names."""
    pz = Pseudonymizer(b"t" * 32)
    engine = Engine(load_detectors(policy), Catalog(policy), pz)
    named = named_as_alerts(small.truth, pz, engine.names.text)
    held = [t for t in small.truth if "subject" in t]
    assert held and [t["subject"] for t in named if "subject" in t] == [pz(t["subject"]) for t in held]
    raw = json.dumps(small.truth)
    assert re.search(r"\bC[0-9]{7}\b", raw) and not re.search(r"\bC[0-9]{7}\b", json.dumps(named))
    assert [t["key"] for t in named if t["key"].startswith("E")] == [
        t["key"] for t in small.truth if t["key"].startswith("E")
    ]  # an employee's id is no customer's


def test_unknown_format_rejected(small: Workload, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write_files(small, tmp_path, "csv")


# -- the real bulk-query detector ----------------------------------------------------------------------
def access_alerts(policy: Policy, wl: Workload, kind: str) -> list[Any]:
    """The access detector's final alerts on the workload, its reference streams fed as the demo
    feeds them (the customers stream tells a post's own book: an AML analyst's day is its own)."""
    spec = next(s for s in load_detectors(policy) if s.kind == kind)
    engine = Engine([spec], Catalog(policy), pseudonymize=str)
    for s in REFERENCE_STREAMS:
        engine.apply_reference(s, [from_model(s, r) for r in stream(wl, s)])
    accesses = [
        (RawRecord("a", 0, i, None), from_model("access", e)) for i, e in enumerate(stream(wl, "access"))
    ]
    return latest(engine.process("access", "a", 0, accesses) + engine.drain())


DAYS_READING = ("low_and_slow", "day_harvest")  # a day's reading, a few an hour


def test_bulk_query_fires_for_exactly_the_injected_actors(policy: Policy, wl: Workload) -> None:
    alerts = access_alerts(policy, wl, "bulk_query")
    assert {a.actor_id for a in alerts} == {key for key, _ in truth_of(wl, "bulk_query")}
    scored = score(alerts, wl.truth, ["bulk_query"])["bulk_query"]
    assert scored["missed"] == 0 and scored["false_alarms"] == 0, scored
    for v in wl.truth:
        if v["detector"] == "bulk_query" and v["rule"] not in DAYS_READING:
            assert v["ts_end"] - v["ts_start"] < 60 * 60_000
    slow = [v for v in wl.truth if v["rule"] in DAYS_READING]
    assert {v["rule"] for v in slow} == set(DAYS_READING)
    assert all(v["ts_end"] - v["ts_start"] > 4 * 3_600_000 for v in slow)  # a day's reading


def test_the_ordinary_jobs_of_a_banks_day_raise_nothing(policy: Policy, sized: tuple[int, Workload]) -> None:
    """probe_u4 L1: the jobs that read many customers a day by their nature are in the normal
    traffic at their volume: customer managers calling their share of a 名单式 campaign's list (for
    marketing, so past any own book), AML analysts clearing cases and screening hits, back-office
    clerks reviewing the branch's files. The access detectors raise nothing on any of them; a
    sub-branch product manager reading a list caller's day is found by the day measure alone, no
    hour of it near the role's window."""
    events, wl = sized
    roles = {e.actor_id: e.roles for e in stream(wl, "entitlements")}
    injected = {v["key"] for v in wl.truth}
    read: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # job -> actor -> customers
    for a in stream(wl, "access"):
        if a.actor_id in injected:
            continue
        if a.purpose == "marketing" and roles[a.actor_id][0] in LIST_CALLERS:
            read["list"][a.actor_id].update(a.subject_ids)
        elif roles[a.actor_id] in (["aml_analyst"], ["ops_back_office"]):
            read[roles[a.actor_id][0]][a.actor_id].update(a.subject_ids)
    assert set(read) == {"list", "aml_analyst", "ops_back_office"}
    if events >= 50_000:  # the workload holds an office day: each job's day at its pace
        assert LIST_CALLS[0] <= max(map(len, read["list"].values())) <= LIST_CALLS[1]
        assert min(map(len, read["aml_analyst"].values())) >= AML_HITS[0]
        assert min(map(len, read["ops_back_office"].values())) >= BACK_OFFICE_FILES[0]
    holders = {actor for job in read.values() for actor in job}
    bulk = access_alerts(policy, wl, "bulk_query")
    for alerts in (bulk, access_alerts(policy, wl, "unauthorized_lookup")):
        assert not [a.summary for a in alerts if a.actor_id in holders]
    harvests = {v["key"] for v in wl.truth if v["rule"] == "day_harvest"}
    found = [a for a in bulk if a.actor_id in harvests]
    assert harvests and {a.actor_id for a in found} == harvests
    for a in found:
        assert "day measure of 100" in a.summary and "sliding-window" not in a.summary, a.summary


def test_unauthorized_lookup_finds_every_injected_case_and_nothing_else(policy: Policy, wl: Workload) -> None:
    """Scored as `lifemon demo` scores it: every injected case found, no alert on normal traffic
    (which holds approved cross-org queries, single denials and C1 exports: near misses)."""
    alerts = access_alerts(policy, wl, "unauthorized_lookup")
    scored = score(alerts, wl.truth, ["unauthorized_lookup"])["unauthorized_lookup"]
    assert scored["missed"] == 0 and scored["false_alarms"] == 0, scored
    assert scored["found"] == len(truth_of(wl, "unauthorized_lookup")) >= 10


@pytest.mark.parametrize("kind", ["shared_account", "shared_workstation"])
def test_shared_accounts_are_found_and_one_persons_places_stay_silent(
    policy: Policy, sized: tuple[int, Workload], kind: str
) -> None:
    """Scored as `lifemon demo` scores it: every account used at two PCs by turns and every PC
    driving two accounts by turns found, nothing else, beside normal traffic full of near misses:
    staff switching to the tablet or the VPN for a stretch, VPN sessions re-addressed, counter PCs
    passed to the next teller at the shift change, a trip to the tablet and back, a handover with
    a customer finished after it."""
    events, wl = sized
    alerts = access_alerts(policy, wl, kind)
    scored = score(alerts, wl.truth, [kind])[kind]
    assert scored["missed"] == 0 and scored["false_alarms"] == 0, scored
    assert scored["found"] >= 2
    places: dict[str, list[tuple[int, str]]] = defaultdict(list)  # account -> (time, address)
    users: dict[str, set[str]] = defaultdict(set)  # counter PC -> tellers
    for a in stream(wl, "access"):
        places[a.actor_id].append((a.ts, a.client_ip))
        if a.client_ip.startswith("10.240."):
            users[a.client_ip].add(a.actor_id)
    switches = sum(p != q for seen in places.values() for (_, p), (_, q) in pairwise(seen))
    assert switches > len(places)  # staff move between places, more than once each on average
    if events >= 50_000:  # sub-branches with two tellers or more: a counter PC changes hands
        assert any(len(tellers) > 1 for tellers in users.values())
    vpn = {ip for seen in places.values() for _, ip in seen if ip.startswith("10.250.")}
    assert len(vpn) > 1


# -- the other detectors: injected violations found, near misses silent ---------------------------------
def test_retention_overrun_finds_every_injected_case_and_nothing_else(policy: Policy, wl: Workload) -> None:
    """The real detector, lifecycle and accesses re-keyed by customer, scored as `lifemon demo`
    scores it: normal traffic holds the near misses (deleted a day before the deadline, a former
    customer's KYC record deleted on the last day of its five years, requests executed inside 15
    days, reads an hour before a deletion, another bank's C2 payee data)."""
    spec = next(s for s in load_detectors(policy) if s.kind == "retention_overrun")
    engine = Engine([spec], Catalog(policy), pseudonymize=str)
    alerts = []
    for s in ("lifecycle", "access"):
        events = [(RawRecord(s, 0, i, None), from_model(s, e)) for i, e in enumerate(stream(wl, s))]
        alerts += engine.process(s, s, 0, events)
    alerts = latest(alerts + engine.drain())
    scored = score(alerts, wl.truth, ["retention_overrun"])["retention_overrun"]
    assert scored["missed"] == 0 and scored["false_alarms"] == 0, scored
    injected = [v for v in wl.truth if v["detector"] == "retention_overrun"]
    # one record may carry two violations (read after its deadline, and kept past it)
    assert scored["found"] == len(injected) and len({v["rule"] for v in injected}) == 8


def test_offscope_marketing_fires_for_exactly_the_injected_pushes(policy: Policy, wl: Workload) -> None:
    """The real detector, every rule injected once at least, near misses in the normal traffic; with
    the entitlements, so every campaign's SMS team is judged by its roles and level."""
    offscope_exactly(policy, wl)


def test_a_head_office_campaign_beside_a_branchs_keeps_head_offices_team(policy: Policy) -> None:
    """Seed 14 builds its audience-violation campaign, head office's SMS, beside a branch's: it once
    took that branch's SMS team, and every push of it read as approved at the wrong level."""
    offscope_exactly(policy, generate(20_000, seed=14, policy=policy))


def offscope_exactly(policy: Policy, wl: Workload) -> None:
    spec = next(s for s in load_detectors(policy) if s.kind == "offscope_marketing")
    engine = Engine([spec], Catalog(policy), pseudonymize=str)
    for ref in ("consents", "customers", "entitlements"):
        engine.apply_reference(ref, [from_model(ref, r) for r in stream(wl, ref)])
    pushes = [
        (RawRecord("m", 0, i, None), from_model("marketing", e))
        for i, e in enumerate(stream(wl, "marketing"))
    ]
    alerts = engine.process("marketing", "m", 0, pushes) + engine.advance() + engine.drain()
    alerted = {(a.subjects_sample[0], a.window_start) for a in alerts}
    assert alerted == truth_of(wl, "offscope_marketing")
    rules = {v["rule"] for v in wl.truth if v["detector"] == "offscope_marketing"}
    # every rule injected, but channel_not_declared: the generated bank markets on the channels its
    # privacy policy names only (no email campaign); nor minor_marketed_without_consent: its customers
    # carry no birth date. The unit tests and the policy's examples prove them
    assert rules == {r.value for r in Rule} - {"channel_not_declared", "minor_marketed_without_consent"}
    newest = {a.subjects_sample[0]: a for a in sorted(alerts, key=lambda a: a.revision)}
    for v in wl.truth:
        if v["detector"] == "offscope_marketing":  # each injection breaks its own rule and no other
            broken = {k for k in newest[v["key"]].counts if k.startswith("rule_")}
            assert broken == {f"rule_{v['rule']}"}


def test_sdk_overcollection_finds_every_injected_case_and_nothing_else(policy: Policy, wl: Workload) -> None:
    """The real detector against the ground truth, scored as `lifemon demo` scores it: the near
    misses (vague fields, package names, a device at its declared rate) must stay silent."""
    spec = next(s for s in load_detectors(policy) if s.kind == "sdk_overcollection")
    engine = Engine([spec], Catalog(policy), pseudonymize=str)
    engine.apply_reference("consents", [from_model("consents", c) for c in stream(wl, "consents")])
    events = [(RawRecord("s", 0, i, None), from_model("sdk", e)) for i, e in enumerate(stream(wl, "sdk"))]
    alerts = latest(engine.process("sdk", "s", 0, events) + engine.drain())
    scored = score(alerts, wl.truth, ["sdk_overcollection"])["sdk_overcollection"]
    assert scored["missed"] == 0 and scored["false_alarms"] == 0, scored
    rules = {v["rule"] for v in wl.truth if v["detector"] == "sdk_overcollection"}
    assert rules == {a.rule_id.rsplit(".", 1)[1] for a in alerts} and len(rules) == 8


def test_transfer_policy_fires_for_exactly_the_injected_transfers(policy: Policy, wl: Workload) -> None:
    """The real detector, with the consents stream as of each transfer: every injected violation is
    found on its own rule, and no normal transfer (near misses included) raises anything."""
    spec = next(s for s in load_detectors(policy) if s.kind == "transfer_policy")
    engine = Engine([spec], Catalog(policy), pseudonymize=str)
    engine.apply_reference("consents", [from_model("consents", c) for c in stream(wl, "consents")])
    transfers = [
        (RawRecord("t", 0, i, None), from_model("transfer", e)) for i, e in enumerate(stream(wl, "transfer"))
    ]
    alerts = engine.process("transfer", "t", 0, transfers) + engine.drain()
    rule_of = {r.rule_id: name for name, r in spec.params.rules}
    found = {(a.actor_id, rule_of[a.rule_id]) for a in alerts}
    injected = {(v["key"], v["rule"]) for v in wl.truth if v["detector"] == "transfer_policy"}
    assert injected <= found
    truth = [v for v in wl.truth if v["detector"] == "transfer_policy"]
    for a in alerts:  # anything else raised is another rule broken by an injected transfer itself
        rule = rule_of[a.rule_id]
        assert any(
            a.actor_id == v["key"]
            and (rule == v["rule"] or a.window_start == v["ts_start"])
            and a.window_start <= v["ts_end"]
            and v["ts_start"] <= a.window_end
            for v in truth
        ), a.summary


# -- normal traffic a SOC would recognize, and near misses from the law ------------------------------
LAW = 50  # art. 5 ¶1 (3)(4) of the judicial interpretation (seed 001 §五.1)
SENSITIVE = {"credit", "loan", "property", "location", "communication_content"}  # art. 5 ¶1 (3)


def test_the_generator_reads_no_detector_settings(policy: Policy, small: Workload) -> None:
    """Violations are sized from the law and the policy catalog: a policy without any detector
    section generates the very same bank, traffic and truth."""
    bare = policy.model_copy(update={"detectors": {}})
    again = generate(2000, seed=7, policy=bare)
    assert again.records == small.records and again.truth == small.truth
    import streams.workload as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for read in (
            ".detectors",
            "load_detectors",
            "from detectors",
            "import detectors",
            "policy/detectors",
        ):
            assert read not in text, (path, read)


def test_normal_access_looks_like_a_bank(sized: tuple[int, Workload], policy: Policy) -> None:
    """Working hours with a lunch dip, several IPs per employee, a few denials, multi-row
    statement lookups, and hotline agents and batch jobs reading many customers under approvals
    that cover them, within budget."""
    events, wl = sized
    accesses = stream(wl, "access")
    injected = {v["key"] for v in wl.truth}
    by_hour = Counter((a.ts // 3_600_000 + 8) % 24 for a in accesses)  # Beijing time
    assert by_hour[10] > 2 * by_hour[12] and by_hour[10] > 3 * by_hour[8]
    ips = defaultdict(set)
    for a in accesses:
        ips[a.actor_id].add(a.client_ip)
    assert sum(len(v) > 1 for v in ips.values()) > len(ips) // 2
    denied = [a for a in accesses if a.outcome == "denied" and a.actor_id not in injected]
    assert len(denied) >= 3
    statements = [a for a in accesses if len(a.subject_ids) == 1 and a.row_count > 1]
    assert len(statements) > len(accesses) // 50
    # approvals: every named one covers its accesses' purpose and system, within its budget
    ents = AsOf(stream(wl, "entitlements"), "actor_id")
    used: Counter[str] = Counter()
    heavy = Counter()
    catalog = Catalog(policy)
    for a in accesses:
        if a.approval_id and a.actor_id not in injected:
            ent = ents.as_of(a.actor_id, a.ts)
            ap = next(x for x in ent.approvals if x.approval_id == a.approval_id)
            assert a.purpose == ap.purpose and a.system in ap.systems and ap.approver_id != a.actor_id
            assert catalog.granted(ap.categories, a.fields, ap.fields), (a.fields, ap)
            used[a.approval_id] += max(a.row_count, len(a.subject_ids))
            heavy[a.actor_id] += len(a.subject_ids)
    budgets = {
        x.approval_id: x.max_records
        for e in stream(wl, "entitlements")
        for x in e.approvals
        if x.approval_id in used
    }
    assert all(used[k] <= budgets[k] for k in used)
    assert any(used[k] == budgets[k] for k in used)  # a near miss: an approval spent exactly
    assert sum(n > LAW for n in heavy.values()) >= 3  # hotline agents and batch accounts read many
    assert any(a.startswith("SVC-") for a in heavy)


def test_law_count_near_misses_and_cases_start_at_the_threshold(wl: Workload, policy: Policy) -> None:
    """Low and slow: a day's reading of credit or loan data from the law's 50 records up is a
    case, 49 is a near miss; every unapproved reader stays under the law within any day."""
    catalog = Catalog(policy)
    sensitive: dict[str, dict[str, int]] = defaultdict(dict)  # actor -> customer -> last read
    most: Counter[str] = Counter()
    for a in stream(wl, "access"):
        if a.outcome != "success" or a.approval_id or not catalog.categories(a.fields) & SENSITIVE:
            continue
        seen = sensitive[a.actor_id]
        for cid in a.subject_ids:
            seen[cid] = a.ts
        for cid in [c for c, t in seen.items() if t <= a.ts - DAY]:
            del seen[cid]
        most[a.actor_id] = max(most[a.actor_id], len(seen) + max(0, a.row_count - len(a.subject_ids)))
    slow = {v["key"] for v in wl.truth if v["rule"] == "low_and_slow"}
    bursts = {v["key"] for v in wl.truth if v["detector"] == "bulk_query"}
    assert slow and all(LAW <= most[k] <= LAW + 25 for k in slow)
    assert LAW - 1 in {n for k, n in most.items() if k not in bursts}  # the near miss
    assert max(n for k, n in most.items() if k not in bursts) == LAW - 1


def test_approval_misuse_is_injected(wl: Workload) -> None:
    rules = {v["rule"] for v in wl.truth if v["detector"] == "unauthorized_lookup"}
    assert {"approval_beyond_budget", "approval_beyond_scope", "approval_beyond_purpose"} <= rules
