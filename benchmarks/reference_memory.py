"""What reference history costs in memory: N customers and 3 consents each (purpose x channel), in
the engine's as-of registries, as msgspec structs after pseudonymization, and after pruning.

    python benchmarks/reference_memory.py [--customers 1000000]

Prints resident memory per record; the machine's own noise does not matter much here.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.structs import STRICT  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.registries import AsOfRegistry, ConsentRegistry  # noqa: E402

T0 = 1_767_225_600_000


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    n = ap.parse_args().customers
    pz = Pseudonymizer(b"k" * 32)
    Customer, Consent = STRICT["customers"], STRICT["consents"]
    customers = AsOfRegistry("customer_id")
    consents = ConsentRegistry()
    ids = [pz(f"C{i:09d}") for i in range(n)]  # pseudonyms exist anyway: not counted below
    gc.collect()
    base = rss_mib()
    t = time.perf_counter()
    for cid in ids:
        customers.put(Customer(customer_id=cid, ts=T0, org_id="S0101", org_path=["HO", "B01", "S0101"]))
    after_customers = rss_mib()
    for cid in ids:
        consents.put(Consent(subject_id=cid, ts=T0, purpose="marketing", channel="sms", status="granted"))
        consents.put(
            Consent(subject_id=cid, ts=T0, purpose="marketing", channel="app_push", status="granted")
        )
        # a later withdrawal: the same key gets a history of two versions
        consents.put(
            Consent(subject_id=cid, ts=T0 + 1, purpose="marketing", channel="sms", status="withdrawn")
        )
    loaded = time.perf_counter() - t
    after_consents = rss_mib()
    dropped = consents.prune(T0 + 10)
    gc.collect()
    after_prune = rss_mib()
    print(
        f"{n:,} customers: {after_customers - base:,.0f} MiB ({(after_customers - base) * 2**20 / n:,.0f} B each)"
    )
    print(
        f"{3 * n:,} consents on {len(consents):,} keys: {after_consents - after_customers:,.0f} MiB "
        f"({(after_consents - after_customers) * 2**20 / (3 * n):,.0f} B each); loaded in {loaded:.1f} s"
    )
    print(f"prune dropped {dropped:,} superseded versions; RSS now {after_prune - base:,.0f} MiB above start")


if __name__ == "__main__":
    main()
