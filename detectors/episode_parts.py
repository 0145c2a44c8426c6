"""An open bulk_query episode's customers, kept in the store as parts.

An episode of a long spree holds thousands of customers. Kept inside the window's value, all of
them were encoded and sent to the changelog at every checkpoint the employee read anything: a
spree's changelog grew with the square of its length (benchmarks/checkpoint_bytes.py: the open
episodes' customers were 4.5 MB of bulk_query's 24.1 MB). Now a checkpoint writes a part of its
own with the customers that changed since the last one (new ones, or more records), and every
`PARTS` parts the episode's customers are written once whole instead, the old parts deleted.

A customer's figures only grow (the most rows one access returned, overall and per category, the
highest class), so a later part's figures for a customer are the newer ones: read in order, the
last part that names a customer has its figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# parts an episode keeps before its customers are written whole again: a checkpoint writes the
# customers that changed and, every PARTS checkpoints, the whole episode (1/PARTS of the old cost);
# a restore reads PARTS keys an episode at most
PARTS = 8

# cid -> [records, {category: records}, class rank] (`Episode.customers`)
Customers = dict[str, list[Any]]


def part_key(actor: str, seq: int) -> str:
    """Unique per (actor, seq): the actor is everything between the prefix and the last '#'."""
    return f"e:{actor}#{seq}"


def part_of(customers: Customers, cids: Iterable[str]) -> list[Any]:
    """The stored value: [customer, records, {category: records}, rank, …], a copy (a later read
    changes the live figures, and the part must keep those of its checkpoint)."""
    flat: list[Any] = []
    for cid in cids:
        n, rows, rank = customers[cid]
        flat += (cid, n, dict(sorted(rows.items())), rank)
    return flat


def customers_of(parts: Iterable[list[Any]]) -> Customers:
    """The customers of an episode's parts, oldest first: the last part naming one has its figures."""
    customers: Customers = {}
    for flat in parts:
        for i in range(0, len(flat), 4):
            customers[flat[i]] = [flat[i + 1], dict(flat[i + 2]), flat[i + 3]]
    return customers
