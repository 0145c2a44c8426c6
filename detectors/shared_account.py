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
server, a NAT gateway) stands for many machines and is no workstation.

State per key: its accesses of the last `window_minutes` ([time, other, event id, class rank]),
the open episode, and the deadline of its one timer. A batch costs one store read and one
recomputation over those few accesses per key it touches, not per access.
"""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.base import Context, Finding, Store, iso_minute, n_of
from detectors.offscope_marketing import RuleSpec
from policy.model import CLASS_RANK, RANK_CLASS, DetectorSection, JrClass

MINUTE_MS = 60_000
# an access kept: [ts, other, event id, class rank]; an episode: [anchor, first, last return,
# returns' event ids, its accesses' event ids, others seen, highest class rank, revision raised]
TS, OTHER, EVENT, RANK = range(4)
ANCHOR, FIRST, LAST, RETURNS, EVENTS, OTHERS, TOP, RAISED = range(8)


class SharedAccountParams(BaseModel):
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


class SharedWorkstationParams(SharedAccountParams):
    pooled_networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="addresses that stand for many machines (a VPN pool, a terminal server, a NAT "
        "gateway): no workstation, whatever accounts come through them",
    )

    @field_validator("pooled_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return [ip_network(v, strict=False) if isinstance(v, str) else v for v in value or ()]


class _Interleaving:
    """The core of both kinds: the accesses of one key (the input's) interleaving two or more of
    the other (`other_of`)."""

    kind: ClassVar[str]
    inputs: ClassVar[dict[str, str]]
    Params: ClassVar[type[BaseModel]] = SharedAccountParams
    other_of: ClassVar[str]  # the attribute whose values interleave
    other_noun: ClassVar[tuple[str, str]]  # how the summary names it: singular, plural
    says: ClassVar[str]  # the summary's opening, the key in its braces

    def __init__(self, section: DetectorSection, params: SharedAccountParams, store: Store):
        self.section, self.p, self.store = section, params, store
        self.window_ms = params.window_minutes * MINUTE_MS
        self.rule = next(iter(params.rules))

    @staticmethod
    def load_value(data: Any) -> Any:
        return data

    def evidence(self, ev: Any) -> bool:
        """Whether the access says where it came from."""
        return bool(ev.client_ip)

    def process(self, stream: str, events: Sequence[Any], ctx: Context) -> Iterable[Finding]:
        key_attr = self.inputs[stream]
        batch: dict[str, list[list[Any]]] = defaultdict(list)
        classify = ctx.catalog.classify
        for ev in events:
            if self.evidence(ev):
                rank = CLASS_RANK[classify(ev.fields)]
                batch[getattr(ev, key_attr)].append([ev.ts, getattr(ev, self.other_of), ev.event_id, rank])
        found: list[Finding] = []
        for key, seen in batch.items():
            found += self._judge(key, seen, ctx)
        return found

    def _judge(self, key: str, seen: list[list[Any]], ctx: Context) -> list[Finding]:
        """Add a key's accesses of the batch, find its returns, and grow, close or open its episode."""
        # [accesses kept, open episode or None, timer deadline (0: none)]
        state = self.store.setdefault(key, lambda: [[], None, 0])
        recent, episode = state[0], state[1]
        for access in seen:  # a redelivered access sorts beside itself: no return, no second one
            insort(recent, access)
        found = []
        # a closed episode's returns are not among them: the next one's first return is more than a
        # window after its last, so the window kept starts after it
        for ts, first, event in self._returns(recent):
            if episode is not None and event in episode[RETURNS]:
                continue
            if episode is not None and ts > episode[LAST] + self.window_ms:
                found += self._raised(key, episode, ctx, closed=True)
                episode = None
            if episode is None:
                episode = [first, first, ts, [], [], [], CLASS_RANK[JrClass.C1], 0]
            episode[FIRST], episode[LAST] = min(episode[FIRST], first), max(episode[LAST], ts)
            episode[RETURNS].append(event)
        if episode is not None:
            self._take_in(episode, recent)
            found += self._raised(key, episode, ctx, closed=False)
        latest = recent[-1][TS]
        state[:] = [[a for a in recent if a[TS] >= latest - self.window_ms], episode, state[2]]
        self._arm(key, state, ctx)
        self.store.touch(key)
        return found

    def _returns(self, recent: list[list[Any]]) -> Iterable[tuple[int, int, str]]:
        """(time, time of the use returned to, event id) of each access that comes back to an
        other the key used within the window, after a different one."""
        last: dict[str, int] = {}
        before = None
        for ts, other, event, _ in recent:
            if other != before and other in last and ts - last[other] <= self.window_ms:
                yield ts, last[other], event
            last[other], before = ts, other

    def _take_in(self, episode: list[Any], recent: list[list[Any]]) -> None:
        """The episode's accesses: the key's accesses from its first to its latest return."""
        for ts, other, event, rank in recent:
            if episode[FIRST] <= ts <= episode[LAST] and event not in episode[EVENTS]:
                if len(episode[EVENTS]) < self.p.evidence_limit:
                    episode[EVENTS].append(event)
                if other not in episode[OTHERS]:
                    episode[OTHERS].append(other)
                episode[TOP] = max(episode[TOP], rank)

    def _due(self, state: list[Any]) -> int:
        """When nothing kept can make or extend an episode any more."""
        recent, episode = state[0], state[1]
        return max(recent[-1][TS] if recent else 0, episode[LAST] if episode else 0) + self.window_ms

    def _arm(self, key: str, state: list[Any], ctx: Context) -> None:
        """One timer per key: it closes the episode and forgets the key once its window passed."""
        if state[2] == 0:
            state[2] = self._due(state)
            ctx.timers.register(key, state[2])

    def on_timer(self, key: str, deadline_ms: int, ctx: Context) -> Iterable[Finding]:
        state = self.store.get(key)
        if state is None:
            return []
        due = self._due(state)
        if due > deadline_ms:  # accesses came since it was set: wait for their window to pass
            state[2] = due
            ctx.timers.register(key, due)
            self.store.touch(key)
            return []
        self.store.delete(key)
        return self._raised(key, state[1], ctx, closed=True) if state[1] is not None else []

    def _raised(self, key: str, episode: list[Any], ctx: Context, closed: bool) -> list[Finding]:
        """The episode's alert, once it holds `min_returns` returns: a revision per return added
        (the first is 1), and one more when it closes."""
        returns = len(episode[RETURNS])
        revision = returns - self.p.min_returns + 1 + closed
        if returns < self.p.min_returns or revision <= episode[RAISED]:
            return []
        episode[RAISED] = revision
        spec = self.p.rules[self.rule]
        others = episode[OTHERS]
        singular, plural = self.other_noun
        return [
            Finding(
                detector=self.kind,
                rule_id=f"{self.section.rule_id}.{self.rule}",
                key=key,
                anchor=episode[ANCHOR],
                window_start=episode[FIRST],
                window_end=episode[LAST],
                severity=spec.severity,
                revision=revision,
                closed=closed,
                summary=f"{self.says.format(key)} {n_of(len(others), singular, plural)} at once "
                f"({', '.join(others)}) from {iso_minute(episode[FIRST])} to {iso_minute(episode[LAST])}: "
                f"{n_of(returns, 'time')} back to one it had left {self.p.window_minutes} minutes or "
                "less before (a move from one to another and staying is a switch, not this)",
                jr_class=RANK_CLASS[episode[TOP]].value,
                counts={"returns": returns, plural: len(others)},
                evidence_event_ids=list(episode[EVENTS]),
                event_count=len(episode[EVENTS]),
                first_seen=episode[FIRST],
                last_seen=episode[LAST],
                title_zh=spec.title_zh,
                title_en=spec.title_en,
                regulation=spec.regulation,
                **self.actor(key, episode, ctx),
            )
        ]

    def actor(self, key: str, episode: list[Any], ctx: Context) -> dict[str, Any]:
        return {"actor_id": key}


def _in_networks(ip: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(ip)
    except ValueError:  # a host name or a mangled address: itself, not a pool's
        return False
    return any(address in n for n in networks)


class SharedAccountDetector(_Interleaving):
    kind: ClassVar[str] = "shared_account"
    inputs: ClassVar[dict[str, str]] = {"access": "actor_id"}
    other_of: ClassVar[str] = "client_ip"
    other_noun: ClassVar[tuple[str, str]] = ("workstation", "workstations")
    says: ClassVar[str] = "account {} used from"

    def actor(self, key: str, episode: list[Any], ctx: Context) -> dict[str, Any]:
        return {"actor_id": key, "actor_org": ctx.org_of(key, episode[FIRST])}


class SharedWorkstationDetector(_Interleaving):
    kind: ClassVar[str] = "shared_workstation"
    inputs: ClassVar[dict[str, str]] = {"access": "client_ip"}
    needs: ClassVar[dict[str, str]] = {"access": "client_ip"}
    other_of: ClassVar[str] = "actor_id"
    other_noun: ClassVar[tuple[str, str]] = ("account", "accounts")
    says: ClassVar[str] = "workstation {} drove"
    Params: ClassVar[type[BaseModel]] = SharedWorkstationParams
    # the workstation is the actor: a machine, which OCSF's user types name as a System
    actor_is: ClassVar[str] = "system"

    def __init__(self, section: DetectorSection, params: SharedWorkstationParams, store: Store):
        super().__init__(section, params, store)
        networks = params.pooled_networks
        # an address parsed once, not per access (a workstation sends many)
        self.pooled = lru_cache(maxsize=65_536)(lambda ip: bool(networks) and _in_networks(ip, networks))

    def evidence(self, ev: Any) -> bool:
        """From a workstation: a pooled address is many machines (an account's VPN address is still
        where that account was, so the account detector reads it)."""
        return bool(ev.client_ip) and not self.pooled(ev.client_ip)
