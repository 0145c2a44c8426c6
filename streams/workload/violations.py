"""Injected violations, one method per detector, each recorded in the ground truth with the key its
detector alerts on."""

from __future__ import annotations

import math

from schemas.models import (
    Action,
    Channel,
    LifecycleStage,
)
from streams.workload.bank import Bank
from streams.workload.base import DAY, HOUR, MINUTE, ROLE_WEIGHTS


class Violations(Bank):
    def _inject_bulk_query(self) -> None:
        """Seed 001 §一 (unapproved queries) and §五.1 (50 / 500 records): each burst reads more records
        than the judicial interpretation's threshold for its category, inside one hour. Sized from the
        law, never from the detector's own settings, so the detector is judged, not mirrored."""
        rng = self.rng

        for i in range(self._count(4)):
            variant, t = i % 4, self._ts(0.1, 0.8)
            first = len(self.out["access"])
            if variant == 0:
                e = self._take(["lobby_manager"])
                n = rng.randint(60, 150)  # balances: property data, 50 records (art. 5 ¶1 (4))
                book = self._ensure_book(e.org, n)
                gap = 45 * MINUTE // n
                for j, cid in enumerate(rng.sample(book, n)):
                    self._access(
                        t + j * gap,
                        e,
                        e.org,
                        "core_banking",
                        Action.query,
                        [cid],
                        ["customer_name", "account_balance"],
                    )
                rule, text = (
                    "query_burst",
                    f"Lobby manager {e.id} ({e.org}) queried {n} customers' balances (C2)",
                )
            elif variant == 1:
                e = self._take(["wealth_manager"])
                n = rng.randint(30, 45)  # C3 card data, exported in threes: never to leave unapproved
                book = self._ensure_book(e.org, n)
                chosen = rng.sample(book, n)
                gap = 45 * MINUTE // math.ceil(n / 3)
                for j in range(0, n, 3):
                    self._access(
                        t + j // 3 * gap,
                        e,
                        e.org,
                        "card_system",
                        Action.export,
                        chosen[j : j + 3],
                        ["customer_name", "payment_account_no", "card_expiry"],
                    )
                rule, text = (
                    "c3_export",
                    f"Wealth manager {e.id} ({e.org}) exported {n} customers' card data (C3)",
                )
            elif variant == 2:
                e = self._take(["ho_marketing_mgmt"])
                batches = rng.randint(6, 9)  # 600-900 transaction records: 500 (art. 5 ¶1 (5))
                chosen = rng.sample(list(self.customer_org), batches * 100)
                for j in range(batches):
                    self._access(
                        t + j * 4 * MINUTE + rng.randrange(MINUTE),
                        e,
                        "HO",
                        "data_warehouse",
                        Action.export,
                        chosen[j * 100 : (j + 1) * 100],
                        ["transaction_record"],
                    )
                rule = "unapproved_export"
                text = (
                    f"Head-office marketing manager {e.id} exported {batches * 100} customers' transaction records "
                    "without an approval"
                )
            else:
                e = self._take(["sb_president"])
                rows = 70  # credit reports: 50 records (art. 5 ¶1 (3))
                self._access(
                    t, e, e.org, "credit_system", Action.download, [], ["credit_report"], row_count=rows
                )
                rule = "unnamed_rows"
                text = f"Sub-branch president {e.id} ({e.org}) downloaded {rows} customers' credit reports in one report"
            burst = self.out["access"][first:]
            ts0, ts1 = burst[0]["ts"], max(a["ts"] for a in burst)
            within = f" within {(ts1 - ts0) // MINUTE + 1} min" if ts1 > ts0 else ""
            self._violation(
                "bulk_query",
                rule,
                e.id,
                ts0,
                ts1,
                f"{text}{within}, past the judicial interpretation's record threshold.",
            )

    def _inject_unauthorized_lookup(self) -> None:
        """Seed 004 机构设置 / 人员管理(4)(5): a sub-branch sees only itself; a transfer changes and a
        termination revokes permissions at once."""
        rng = self.rng
        sb_roles = ROLE_WEIGHTS["sub_branch"]
        fields = ["customer_name", "account_balance"]
        for i in range(self._count(3)):
            e = self._take(sb_roles)
            t = self._ts(0.2, 0.7)
            if i % 3 == 0:
                other = rng.choice([s for s in self.customers if s != e.org and self.customers[s]])
                cid = rng.choice(self.customers[other])
                self._access(t, e, e.org, "core_banking", Action.view, [cid], fields)
                self._violation(
                    "unauthorized_lookup",
                    "out_of_org_scope",
                    e.id,
                    t,
                    t,
                    f"{e.id} of sub-branch {e.org} viewed customer {cid} managed by {other}.",
                )
            elif i % 3 == 1:
                old = e.org
                self._terminate_staff(e, t)
                ts = t + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(ts, e, old, "mobile_banker", Action.view, [cid], ["customer_name", "assets"])
                self._violation(
                    "unauthorized_lookup",
                    "after_termination",
                    e.id,
                    ts,
                    ts,
                    f"{e.id} viewed customer {cid} {(ts - t) // MINUTE} min after termination.",
                )
            else:
                old = e.org
                new = self._transfer_staff(e, t)
                ts = t + MINUTE + rng.randint(10 * MINUTE, min(2 * HOUR, self.end - t - 2 * MINUTE))
                cid = rng.choice(self.customers[old])
                self._access(ts, e, new, "core_banking", Action.view, [cid], fields)
                self._violation(
                    "unauthorized_lookup",
                    "after_transfer",
                    e.id,
                    ts,
                    ts,
                    f"{e.id}, transferred from {old} to {new}, viewed {old}'s customer {cid} after the transfer.",
                )

    def _inject_offscope_marketing(self) -> None:
        """Seeds 000, 004 流程描述(4)②: consent and opt-out for marketing; SMS submitted and approved by two people."""
        rng = self.rng
        sms = [c for c in self.campaigns if c.channel is Channel.sms]
        for i in range(self._count(3)):
            c = rng.choice(sms if i % 3 == 2 else self.campaigns)
            subject = rng.choice([s for s in c.eligible if s not in self.withdrawn and s not in self.used])
            self.used.add(subject)
            if i % 3 == 0:
                t_w = self._ts(0.2, 0.5)
                self._withdraw(subject, t_w)
                ts = t_w + rng.randint(HOUR, self.end - t_w - HOUR)
                self._push(c, subject, ts)
                rule, text = (
                    "after_withdrawal",
                    f"{c.channel.value} push of {c.id} to {subject} {(ts - t_w) // HOUR} h after the consent was withdrawn.",
                )
            elif i % 3 == 1:
                ts = c.t0 + rng.randrange(HOUR)
                self._push(c, subject, ts, personalized=True, opt_out=False)
                rule, text = (
                    "no_opt_out",
                    f"Personalized push of {c.id} to {subject} offered neither opt-out nor a non-personalized option.",
                )
            else:
                ts = c.t0 + rng.randrange(HOUR)
                self._push(c, subject, ts, approver=c.submitter)
                rule, text = (
                    "four_eyes",
                    f"Marketing SMS {c.id} to {subject} was submitted and approved by the same employee {c.submitter}.",
                )
            self._violation("offscope_marketing", rule, subject, ts, ts, text)

    def _inject_retention_overrun(self) -> None:
        """Seeds 002 §五, 004 §五.(四): location kept 30 days at most, deletion requests answered in 15 days;
        JR/T 0171 §6.1.3 a): another institution's C3 is never stored."""
        rng = self.rng
        keep_location = self.policy.retention.rules["location_trace"].keep_days * DAY
        sla = self.policy.retention.deletion_request_sla_days * DAY
        forbidden = self.policy.retention.forbidden_foreign_c3
        customers = list(self.customer_org)
        for i in range(self._count(3)):
            rid, cid = self._record_id(), rng.choice(customers)
            if i % 3 == 0:
                ts = self.start - rng.randint(keep_location // DAY + 5, 90) * DAY - rng.randrange(DAY)
                self._lifecycle(
                    ts,
                    rid,
                    cid,
                    LifecycleStage.collect,
                    "mobile_banker",
                    ["location_trace"],
                    "nearby_branch_service",
                )
                self._violation(
                    "retention_overrun",
                    "location_trace_30d",
                    rid,
                    ts,
                    ts + keep_location,
                    f"Location trace {rid} of {cid} collected and still kept after {keep_location // DAY} days.",
                )
            elif i % 3 == 1:
                ts = self.start - rng.randint(sla // DAY + 2, 45) * DAY - rng.randrange(DAY)
                self._lifecycle(
                    ts - rng.randint(200, 1500) * DAY,
                    rid,
                    cid,
                    LifecycleStage.collect,
                    "crm",
                    ["customer_name", "mobile_phone", "occupation"],
                    "customer_service",
                )
                self._lifecycle(ts, rid, cid, LifecycleStage.deletion_requested, "crm", [], "subject_request")
                self._violation(
                    "retention_overrun",
                    "deletion_request_15d",
                    rid,
                    ts,
                    ts + sla,
                    f"Deletion request for {rid} of {cid} not fulfilled within {sla // DAY} days.",
                )
            else:
                ts = self._ts(0.1, 0.9)
                cats = [
                    rng.choice(forbidden),
                    *rng.sample(["payment_account_no", "customer_name"], rng.randint(0, 2)),
                ]
                self._lifecycle(
                    ts, rid, None, LifecycleStage.store, "card_system", cats, "acquiring", own=False
                )
                self._violation(
                    "retention_overrun",
                    "foreign_c3_stored",
                    rid,
                    ts,
                    ts,
                    f"Record {rid} stores another institution's C3 data ({', '.join(cats)}).",
                )

    def _inject_sdk_overcollection(self) -> None:
        """Seed 004 §一.(一).6-7 and 流程描述(4)⑪, seed 001 §二(5) §四.4: only declared SDKs, only the
        fields each declares, only after the user agreed to the privacy policy, never C3 data or
        authentication helpers, only to declared hosts inside China, no more often than declared.
        Each case is one observation past the line; the near misses (`_sdk_near_misses`) stay short of it."""
        rng = self.rng
        sdks = self.policy.sdks
        decls = sdks.sdks
        secret = self._sdk_secret()
        for i in range(self._count(8)):
            ts, variant = self._ts(0.05, 0.9), i % 8
            sid = rng.choice(sorted(decls))
            decl = decls[sid]
            fields = rng.sample([f for f in decl.fields if f not in secret], min(3, len(decl.fields)))
            host = rng.choice(decl.hosts) if decl.hosts else None
            if variant == 0:
                extra = rng.choice(
                    [f for f in ("contacts", "sms_content", "call_log") if f not in decl.fields]
                )
                self._sdk(ts, sid, [*fields, extra], [], host, True)
                rule, text = "omitted_field", f"SDK {sid} collected '{extra}', which its declaration omits."
            elif variant == 1:
                known = rng.choice(sorted(sdks.known_sdks.values(), key=lambda k: k.name))
                by_host = i % 2 == 1
                sid = f"sdk_{i}" if by_host else f"{known.package_prefixes[0]}agent{i}"
                self._sdk(ts, sid, ["imei", "oaid", "installed_apps"], [], f"log.{known.hosts[0]}", True)
                rule, text = "undeclared_sdk", f"{known.name}, never declared, collected device ids as {sid}."
            elif variant == 2:
                self._sdk(ts, sid, fields, [], host, False)
                rule, text = (
                    "before_consent",
                    f"SDK {sid} collected {', '.join(fields)} before the user agreed.",
                )
            elif variant == 3:
                code = rng.choice(sorted(f for f in secret if sdks.sdk_fields[f].auth_helper))
                self._sdk(ts, sid, [*fields, code], [], host, True)
                rule, text = "c3_or_auth_helper", f"SDK {sid} received an authentication helper ({code})."
            elif variant == 4:
                stmt = rng.choice([s for s in sdks.not_collected if s.sdks])
                sid = rng.choice(stmt.sdks or [])
                said = rng.choice(stmt.fields)
                self._sdk(ts, sid, [decls[sid].fields[0], said], [], None, True)
                rule, text = (
                    "incorrect_field",
                    f"SDK {sid} collected '{said}', which the policy says it does not get.",
                )
            elif variant in (5, 6):
                sid = rng.choice(sorted(s for s, d in decls.items() if d.hosts))
                fields = [f for f in decls[sid].fields if f not in secret][:2]
                if variant == 5:
                    self._sdk(ts, sid, fields, [], f"collect{i}.example-tracker.com", True)
                    rule, text = "host_not_allowed", f"SDK {sid} sent data to an undeclared host."
                else:
                    self._sdk(ts, sid, fields, [], decls[sid].hosts[0], True, country="SG")
                    rule, text = "country_not_allowed", f"SDK {sid} sent data to an endpoint in SG."
            else:
                sid, limit = next(
                    (s, d.max_per_device_hour) for s, d in sorted(decls.items()) if d.max_per_device_hour
                )
                device, gap = self.rng.randrange(len(self.customer_org)), 50 * MINUTE // (limit + 1)
                for k in range(limit + 1):  # one more than the declared bound within 50 minutes
                    self._sdk(
                        ts + k * gap, sid, decls[sid].fields[:1], [], decls[sid].hosts[0], True, device=device
                    )
                ts_end = ts + limit * gap
                self._violation(
                    "sdk_overcollection",
                    "too_frequent",
                    sid,
                    ts_end,
                    ts_end,
                    f"SDK {sid} collected from one device {limit + 1} times within an hour (declared: {limit}).",
                )
                continue
            self._violation("sdk_overcollection", rule, sid, ts, ts, text)
        self._sdk_near_misses()

    def _sdk_secret(self) -> set[str]:
        """C3 fields and authentication helpers: never for an SDK (seed 004 流程描述(4)⑪)."""
        return {f for f, d in self.policy.sdks.sdk_fields.items() if d.jr_class == "C3" or d.auth_helper}

    def _sdk_near_misses(self) -> None:
        """Normal-looking observations close to each rule: fields reached through a declared broad
        term (PoliCheck `vague`), a declared SDK reported by its package name, a device exactly at its
        declared rate, a subdomain of a declared host. None breaks a rule."""
        rng = self.rng
        decls, covers, secret = self.policy.sdks.sdks, self.policy.sdks.broad_terms, self._sdk_secret()
        for i in range(self._count(4)):
            ts = self._ts(0.05, 0.9)
            broad = [(s, t) for s, d in sorted(decls.items()) for t in d.fields if t in covers]
            sid, term = rng.choice(broad)
            host = decls[sid].hosts[0] if decls[sid].hosts else None
            self._sdk(ts, sid, [term, *covers[term][:3]], [], host, True)
            sid = rng.choice(sorted(s for s, d in decls.items() if d.package_prefixes and d.hosts))
            d = decls[sid]
            plain = [f for f in d.fields if f not in secret][:2]
            self._sdk(ts, f"{d.package_prefixes[0]}core", plain, [], f"edge{i}.{d.hosts[0]}", True)
        sid, limit = next(
            (s, d.max_per_device_hour) for s, d in sorted(decls.items()) if d.max_per_device_hour
        )
        device, ts = rng.randrange(len(self.customer_org)), self._ts(0.05, 0.9)
        for k in range(limit):  # exactly the declared bound within one hour
            self._sdk(
                ts + k * (HOUR // limit),
                sid,
                decls[sid].fields[:1],
                [],
                decls[sid].hosts[0],
                True,
                device=device,
            )
