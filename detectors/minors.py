"""A minor's age, and the consent processing their data needs: one place for every detector that
judges it (retention_overrun's collection, offscope_marketing's push, transfer_policy's share,
sdk_overcollection's upload), so they agree on who is a minor and what consent will do.

Seed 004 定义(10): 不满十四周岁未成年人的个人信息 is sensitive; 基本规定(4)①: processing it needs
the guardian's separate consent; 流程描述(1)③: from 14 a separate consent of the minor or a guardian
(PIPL art. 28, 31; 金融消保办法 art. 29: 经金融消费者或者其监护人明示同意). The ages are
policy/retention.yaml `minors` (`guardian_below`, `adult_at`); no `minors` section, no rule.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from detectors.base import bank_day
from schemas.models import ConsentGiver, ConsentStatus

# a birth date never changes: the customer's latest record is asked (an account opening is logged
# before the nightly customer export that brings it)
LATEST = 2**63 - 1

# core banking's forms of a date: 2012-06-30, 20120630, 2012/06/30 (2012-6-30 too), 2012年6月30日
_DAY = re.compile(
    r"\s*(\d{4})(?:[-/.](\d{1,2})[-/.](\d{1,2})|(\d{2})(\d{2})|年(\d{1,2})月(\d{1,2})日?)"
    # a DATE exported as a DATETIME (Oracle, DB2, JDBC's JSON) at its midnight, in the zone it names
    r"(?:[ T]0?0:00(?::00(?:\.0+)?)?(Z|[+-]\d{2}:?\d{2})?)?\s*"
)


@lru_cache(maxsize=65_536)
def birth_day(text: str) -> date | None:
    """A birth date as core banking writes it (2012-09-05, 20120905, 2012/9/5, 2012年9月5日, and a
    DATE exported as a DATETIME at its midnight, `2012-09-05 00:00:00` or ISO's
    `2012-09-05T00:00:00+08:00`: a probe's such exports silently switched the minors' rules off);
    None for any other text (a blank, 0000-00-00, a typo, 05/09/2012, which may be May or
    September, a time not midnight or a midnight in another zone, which is no date of the bank's):
    the customer is then judged as one of no known age, and the record is kept (a review's
    `19900101` had dead-lettered the whole customer, its org and status with it)."""
    found = _DAY.fullmatch(text)
    if found is None:
        return None
    zone = found.groups()[-1]
    if zone is not None and zone not in ("+08:00", "+0800"):
        # a midnight elsewhere is another day at the bank (Asia/Shanghai, the forms core banking in
        # China writes): JDBC's instant of the DATE 2012-09-05 is 2012-09-04T16:00:00Z, which a
        # review read as the 4th; no date rather than the wrong one
        return None
    year, month, day = (int(g) for g in found.groups()[:-1] if g is not None)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def age_on(born: date, day: date) -> int:
    """周岁: an age is reached the day after its birthday (the birthday itself is still the younger)."""
    return day.year - born.year - ((day.month, day.day) <= (born.month, born.day))


class Minor(NamedTuple):
    """A customer under `adult_at` at an event, as an alert may say it (the band, never the birth date)."""

    age: int
    child: bool  # under `guardian_below`: only the guardian's separate consent will do
    band: str  # "under 14", "aged 14 to 17"
    need: str  # the consent the law asks, as the alert says it
    source: str  # retention.yaml `minors.source`


def minor_at(subject_id: str | None, ts: int, ctx: Any) -> Minor | None:
    """The customer `subject_id` at `ts` if a minor on the bank's calendar day (recipients.yaml
    `timezone`: what a compliance officer in Beijing dates it); None when of age, when retention.yaml
    has no `minors`, or when pfi.customers does not know the customer or gives no birth date."""
    policy = ctx.catalog.policy
    minors = policy.retention.minors
    if minors is None or not subject_id:
        return None
    who = ctx.customer(subject_id, LATEST)
    born = birth_day(who.birth_date) if who is not None and who.birth_date else None
    if born is None:
        return None
    age = age_on(born, bank_day(ts, policy.recipients.timezone))
    if age >= minors.adult_at:
        return None
    child = age < minors.guardian_below
    if child:
        return Minor(
            age,
            True,
            f"under {minors.guardian_below}",
            "a guardian's separate consent (监护人单独同意)",
            minors.source,
        )
    band = f"aged {minors.guardian_below} to {minors.adult_at - 1}"
    return Minor(age, False, band, "a separate consent (单独同意)", minors.source)


def consent_gap(minor: Minor, consent: Any, purpose: str) -> str | None:
    """Why `consent` (the one in force for the use, or None) does not let the bank process this
    minor's data for `purpose`; None if it does: granted, separate, and under `guardian_below` the
    guardian's (pfi.consents `given_by`). Consents not fed are none: the separate consent is what
    the bank must be able to show."""
    if consent is None:
        return f"no consent for {purpose} on record by then"
    if consent.status is not ConsentStatus.granted:
        return f"the consent for {purpose} was withdrawn by then"
    if not consent.separate:
        return f"a consent for {purpose}, not a separate one"
    if minor.child and consent.given_by is not ConsentGiver.guardian:
        return f"the separate consent for {purpose} is the minor's own, not a guardian's"
    return None
