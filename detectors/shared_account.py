"""Shared accounts (seed 004 流程描述(4)④: 严禁共用账户): one account used from two workstations at
once, and one workstation driving several accounts at once.

Both are the same shape seen from two sides: the accesses of one key (an account, a workstation)
go back and forth between two or more of the other (workstations, accounts) within minutes. What
tells sharing from one person's day is the going *back*: moving from the desk PC to the laptop, a
VPN session that reconnects under a new address, or the next teller taking over the counter PC at
the shift change each change the other once and stay; two people at once keep returning to where
the other left off. So an access is a *return* when its other differs from the access just before
it and was used by the key within `window_minutes` before it; returns `window_minutes` apart or
closer are one episode, which fires once it holds `min_returns` of them. One alert per episode:
its id hashes the key and the episode's first access (`Finding.anchor`), and each further return
revises it; it closes once `window_minutes` pass without a return.

The engine gathers an input by one key per detector, so the two sides are two detector kinds over
one core: `shared_account` reads accesses by `actor_id` (the topic's own key, no repartition),
`shared_workstation` by `client_ip` (a repartition topic). An access without a client_ip is no
evidence of either: the account detector passes it by, the workstation detector `needs` one, so
it never crosses Kafka again. A workstation address in `pooled_networks` (a VPN pool, a terminal
server, a NAT gateway) stands for many machines and is no workstation; an account's address in
`per_request_networks` (a proxy or load balancer that hands one machine a new address per request)
is no place, or every employee behind it goes back and forth all day.

State per key (`Kept`): the accesses the watermark has not passed, and of those it has, within
`window_minutes`, only what a later one may need (`_needed`: from each other's last use on, and
what the open episode has not taken in); the open episode (`Episode`: its counts, and ids only
while the window holds them) and the deadline of its one timer. Returns are judged once the watermark passes them (`on_timer`), so an access re-keyed
from another partition, arriving after a later one, still counts where it belongs. A batch costs
one sorted insert per access and one store read per key it touches; each timer, one pass over the
few accesses the key keeps. No round trip per access.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from detectors.base import Context, Finding, Store, iso_minute, n_of
from detectors.offscope_marketing import RuleSpec
from policy.model import CLASS_RANK, RANK_CLASS, DetectorSection, JrClass

MINUTE_MS = 60_000
TS, OTHER, EVENT, RANK = range(4)  # an access kept: [time, other, event id, class rank]
NAMED = 5  # the others a summary names; the rest it counts


class Episode:
    """Returns `window_minutes` apart or closer. Only what falls in the key's window is kept by id
    (its returns and accesses counted), so a long episode (a terminal server left out of
    `pooled_networks`) costs what a short one does."""

    __slots__ = ("anchor", "first", "last", "returns", "accesses", "recent", "taken", "evidence", "others", "top", "raised")  # fmt: skip

    def __init__(self, first: int, last: int) -> None:
        self.anchor = self.first = first  # the use first returned to: the alert id's, fixed
        self.last = last  # its latest return
        self.returns = self.accesses = 0
        self.recent: list[str] = []  # the ids of its returns still in the key's window
        self.taken: list[str] = []  # the ids of its accesses still in the key's window
        self.evidence: list[str] = []  # the first `evidence_limit` accesses' ids
        self.others: list[str] = []
        self.top = CLASS_RANK[JrClass.C1]
        self.raised = 0  # the alert's latest revision (0: none yet)

    def to_json(self) -> list[Any]:
        return [getattr(self, a) for a in self.__slots__]

    @classmethod
    def from_json(cls, row: list[Any]) -> Episode:
        ep = cls.__new__(cls)
        for attr, value in zip(cls.__slots__, row, strict=True):
            setattr(ep, attr, value)
        return ep


class Kept:
    """One key: its accesses of the last `window_minutes`, the open episode, its timer's deadline."""

    __slots__ = ("recent", "episode", "due")

    def __init__(self) -> None:
        self.recent: list[list[Any]] = []
        self.episode: Episode | None = None
        self.due = 0  # the deadline of its one timer (0: none)

    def to_json(self) -> list[Any]:
        return [self.recent, self.episode.to_json() if self.episode else None, self.due]

    @classmethod
    def from_json(cls, row: list[Any]) -> Kept:
        kept = cls()
        kept.recent, episode, kept.due = row
        kept.episode = Episode.from_json(episode) if episode else None
        return kept


def _networks(value: Any) -> list[Any]:
    """The networks as written in the YAML: host bits may be set (10.250.3.1/16 is 10.250.0.0/16)."""
    try:
        return [ip_network(v, strict=False) if isinstance(v, str) else v for v in value or ()]
    except ValueError as e:
        raise ValueError(f"{e}; write each as an address and a prefix length, e.g. 10.251.0.0/24") from None


Networks = Annotated[list[IPv4Network | IPv6Network], BeforeValidator(_networks)]


class InterleavingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[str, RuleSpec] = Field(
        description="the detector's one rule (its severity, titles and regulation)"
    )
    window_minutes: int = Field(
        gt=0,
        description="how recently the key must have used a workstation (an account) for coming back "
        "to it to be a return; returns this close form one episode",
    )
    min_returns: int = Field(
        ge=2,
        description="returns an episode needs to fire: one is a person going back to the desk, or "
        "the outgoing teller finishing a customer after the handover",
    )
    evidence_limit: int = Field(default=50, ge=1, description="the episode's accesses named as evidence")

    def model_post_init(self, _: Any) -> None:
        if len(self.rules) != 1:
            raise ValueError("rules: give exactly one rule (its severity, titles and regulation)")


class SharedAccountParams(InterleavingParams):
    per_request_networks: Networks = Field(
        default_factory=list,
        description="addresses a proxy, load balancer or VPN gateway hands out per request or per "
        "connection, so that one machine shows under several: no place the account was",
    )


class SharedWorkstationParams(InterleavingParams):
    pooled_networks: Networks = Field(
        default_factory=list,
        description="addresses that stand for many machines (a VPN pool, a terminal server, a NAT "
        "gateway): no workstation, whatever accounts come through them",
    )


class _Interleaving:
    """The core of both kinds: the accesses of one key (the input's) interleaving two or more of
    the other (`other_of`)."""

    kind: ClassVar[str]
    inputs: ClassVar[dict[str, str]]
    Params: ClassVar[type[BaseModel]]
    other_of: ClassVar[str]  # the attribute whose values interleave
    placeless_in: ClassVar[str]  # the params' networks whose addresses are no place of this side's
    other_noun: ClassVar[tuple[str, str]]  # how the summary names it: singular, plural
    says: ClassVar[str]  # the summary's opening, the key in its braces

    def __init__(self, section: DetectorSection, params: InterleavingParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.window_ms = params.window_minutes * MINUTE_MS
        self.rule = next(iter(params.rules))
        self.placeless = _member_of(getattr(params, self.placeless_in))

    @staticmethod
    def load_value(data: Any) -> Any:
        return Kept.from_json(data)

    def evidence(self, ev: Any) -> bool:
        """Whether the access says where it came from."""
        return bool(ev.client_ip) and not self.placeless(ev.client_ip)

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        key_attr = self.inputs[stream]
        batch: dict[str, list[list[Any]]] = defaultdict(list)
        profile = ctx.catalog.profile  # memoized by field list: events repeat a few
        for ev in events:
            if self.evidence(ev):
                rank = CLASS_RANK[profile(ev.fields)[0]]
                batch[getattr(ev, key_attr)].append([ev.ts, getattr(ev, self.other_of), ev.event_id, rank])
        for key, seen in batch.items():
            kept = self.store.setdefault(key, Kept)
            for access in seen:  # a redelivered access sorts beside itself: no return, no second one
                insort(kept.recent, access)
            if kept.due == 0:  # judged once the watermark passes them (`on_timer`)
                kept.due = kept.recent[-1][TS]
                ctx.timers.register(key, kept.due)
            self.store.touch(key)
        return ()

    def _judge(self, key: str, kept: Kept, ctx: Context) -> list[Finding]:
        """The returns the watermark has passed, in time order: every access dated before them has
        come, whichever partition it was re-keyed from and however the batches fell, so the
        episode (and its alert id) is the same live, after a restart and in a replay."""
        found, episode, wm = [], kept.episode, ctx.watermark
        # a closed episode's returns are not among them: the next one's first return is more than a
        # window after its last, so the window kept starts after it
        for ts, first, event in self._returns(kept.recent):
            if ts > wm:
                break
            if episode is not None and event in episode.recent:
                continue
            if episode is not None and ts > episode.last + self.window_ms:
                self._take_in(episode, kept.recent)
                found += self._raised(key, episode, ctx, closed=True)
                episode = None
            if episode is None:
                episode = Episode(first, ts)
            episode.first, episode.last = min(episode.first, first), max(episode.last, ts)
            episode.returns += 1
            episode.recent.append(event)
        if episode is not None:
            self._take_in(episode, kept.recent)
            found += self._raised(key, episode, ctx, closed=False)
        kept.recent = self._needed(kept.recent, episode, wm)
        if episode is not None:  # ids the window no longer holds can never come back: counted only
            held = {a[EVENT] for a in kept.recent}
            episode.recent = [e for e in episode.recent if e in held]
            episode.taken = [e for e in episode.taken if e in held]
        kept.episode = episode
        return found

    def _needed(self, recent: list[list[Any]], episode: Episode | None, wm: int) -> list[list[Any]]:
        """What a later access may still need of the key's accesses, once those up to the
        watermark are judged. An access comes back to an other's last use within the window (up
        to the watermark's), and an episode takes in what follows that use: so of the judged, only
        those from the earliest other's last use on, and those after the open episode's latest
        return, not taken in yet. An account at its desk all morning keeps its one last access
        there, not its window's hundreds."""
        cutoff = min(recent[-1][TS], wm) - self.window_ms
        last: dict[str, int] = {}  # each other's last judged use in the window
        for ts, other, _, _ in recent:
            if ts > wm:
                break
            if ts >= cutoff:
                last[other] = ts
        start = min(last.values(), default=cutoff)
        if episode is not None:
            start = min(start, episode.last)
        return recent[bisect_left(recent, [max(start, cutoff)]) :]

    def _returns(self, recent: list[list[Any]]) -> Iterable[tuple[int, int, str]]:
        """(time, time of the use returned to, event id) of each access that comes back to an
        other the key used within the window, after a different one."""
        last: dict[str, int] = {}
        before = None
        for ts, other, event, _ in recent:
            if other != before and other in last and ts - last[other] <= self.window_ms:
                yield ts, last[other], event
            last[other], before = ts, other

    def _take_in(self, episode: Episode, recent: list[list[Any]]) -> None:
        """The episode's accesses not yet counted, from its first to its latest return."""
        taken = set(episode.taken)
        for ts, other, event, rank in recent:
            if episode.first <= ts <= episode.last and event not in taken:
                taken.add(event)
                episode.taken.append(event)
                episode.accesses += 1
                if len(episode.evidence) < self.p.evidence_limit:
                    episode.evidence.append(event)
                if other not in episode.others:
                    episode.others.append(other)
                episode.top = max(episode.top, rank)

    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        """Judge what the watermark passed; then wait for the next access ahead of it, or for the
        window after the latest to pass, which closes the episode and forgets the key."""
        kept = self.store.get(key)
        if kept is None:
            return []
        found = self._judge(key, kept, ctx)
        latest = kept.recent[-1][TS] if kept.recent else 0
        end = max(latest, kept.episode.last if kept.episode else 0) + self.window_ms
        due = latest if latest > ctx.watermark else end
        if due > ctx.watermark:
            kept.due = due
            ctx.timers.register(key, due)
            self.store.touch(key)
            return found
        self.store.delete(key)
        return found + (self._raised(key, kept.episode, ctx, closed=True) if kept.episode else [])

    def _raised(self, key: str, episode: Episode, ctx: Context, closed: bool) -> list[Finding]:
        """The episode's alert, once it holds `min_returns` returns: a revision per return added
        (the first is 1), and one more when it closes."""
        revision = episode.returns - self.p.min_returns + 1 + closed
        if episode.returns < self.p.min_returns or revision <= episode.raised:
            return []
        episode.raised = revision
        spec = self.p.rules[self.rule]
        others, (singular, plural) = episode.others, self.other_noun
        named = ", ".join(others[:NAMED]) + (
            f" and {len(others) - NAMED} more" if len(others) > NAMED else ""
        )
        return [
            Finding(
                detector=self.kind,
                rule_id=f"{self.section.rule_id}.{self.rule}",
                key=key,
                anchor=episode.anchor,
                window_start=episode.first,
                window_end=episode.last,
                severity=spec.severity,
                revision=revision,
                closed=closed,
                summary=f"{self.says.format(key)} {n_of(len(others), singular, plural)} at once "
                f"({named}) from {iso_minute(episode.first)} to {iso_minute(episode.last)}: "
                f"{n_of(episode.returns, 'time')} back to one it had left {self.p.window_minutes} "
                "minutes or less before (a move from one to another and staying is a switch, not this)",
                jr_class=RANK_CLASS[episode.top].value,
                counts={"returns": episode.returns, plural: len(others)},
                evidence_event_ids=list(episode.evidence),
                event_count=episode.accesses,
                first_seen=episode.first,
                last_seen=episode.last,
                title_zh=spec.title_zh,
                title_en=spec.title_en,
                regulation=spec.regulation,
                **self.actor(key, episode, ctx),
            )
        ]

    def actor(self, key: str, episode: Episode, ctx: Context) -> dict[str, Any]:
        return {"actor_id": key}


def _in_networks(ip: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(ip)
    except ValueError:  # a host name or a mangled address: itself, not a pool's
        return False
    return any(address in n for n in networks)


def _member_of(networks: Sequence[IPv4Network | IPv6Network]) -> Callable[[str], bool]:
    """Whether an address is in `networks`: parsed once per address, not per access (a workstation
    sends many); none to look in (the shipped account side) costs a call."""
    if not networks:
        return lambda ip: False
    return lru_cache(maxsize=65_536)(lambda ip: _in_networks(ip, networks))


class SharedAccountDetector(_Interleaving):
    kind: ClassVar[str] = "shared_account"
    inputs: ClassVar[dict[str, str]] = {"access": "actor_id"}
    other_of: ClassVar[str] = "client_ip"
    other_noun: ClassVar[tuple[str, str]] = ("workstation", "workstations")
    Params: ClassVar[type[BaseModel]] = SharedAccountParams
    # a proxy's address for one request says no more than none; a VPN session's is where the
    # account was, so a pooled one counts here
    placeless_in: ClassVar[str] = "per_request_networks"
    says: ClassVar[str] = "account {} used from"

    def actor(self, key: str, episode: Episode, ctx: Context) -> dict[str, Any]:
        return {"actor_id": key, "actor_org": ctx.org_of(key, episode.first)}


class SharedWorkstationDetector(_Interleaving):
    kind: ClassVar[str] = "shared_workstation"
    inputs: ClassVar[dict[str, str]] = {"access": "client_ip"}
    needs: ClassVar[dict[str, str]] = {"access": "client_ip"}
    other_of: ClassVar[str] = "actor_id"
    other_noun: ClassVar[tuple[str, str]] = ("account", "accounts")
    says: ClassVar[str] = "workstation {} drove"
    Params: ClassVar[type[BaseModel]] = SharedWorkstationParams
    # a pooled address is many machines (a proxy's per-request addresses among them)
    placeless_in: ClassVar[str] = "pooled_networks"
    # the workstation is the actor: a machine, which OCSF's user types name as a System
    actor_is: ClassVar[str] = "system"

    def actor(self, key: str, episode: Episode, ctx: Context) -> dict[str, Any]:
        """The workstation, and the org its accounts share as of the episode's first access: the
        SOC routes an alert by org, and a machine's own org is nowhere in the logs (a new user
        read 未知机构 / no org known beside two employees whose orgs HR records)."""
        known = [ent for other in episode.others if (ent := ctx.entitlement(other, episode.first))]
        return {"actor_id": key, "actor_org": shared_org([e.org_path or [e.org_id] for e in known])}


def shared_org(paths: Sequence[Sequence[str]]) -> str | None:
    """The deepest org on every path (head office down to an org): the accounts' one org, else
    the branch or head office above all of them; None for no path, or paths apart from the root."""
    common = None
    for level in zip(*paths, strict=False):
        if len(set(level)) > 1:
            break
        common = level[0]
    return common
