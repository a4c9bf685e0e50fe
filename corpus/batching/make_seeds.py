#!/usr/bin/env python3
"""Writes the seed inputs of the batching fuzz target (fuzz/fuzz_batching.c) into this folder.

    python3 corpus/batching/make_seeds.py          # rewrites corpus/batching/*.bin

The input format is the one in fuzz/fuzz_batching.c's header comment; README.md says what
each seed exercises. Deterministic: the same files every time."""
import os
import random

HEADER_SIZE = 128
SERVER_MESSAGE_SIZES = [HEADER_SIZE + b for b in (80, 128, 192, 336, 512, 1024, 2048, 4096)]
LEDGER_LIMITS = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64]
CLIENT_SMALLER_BYTES = 48
CLIENT_MESSAGE_SIZE_MIN = HEADER_SIZE + 80
MESSAGE_SIZE_MAX = 1024 * 1024

# Operations (packet byte bits 0..2).
NONE, CREATE_ACCOUNTS, CREATE_TRANSFERS, LOOKUP_ACCOUNTS, LOOKUP_TRANSFERS, ECHO, UNKNOWN, OP_255 = range(8)
EVENT_SIZE = {CREATE_ACCOUNTS: 64, CREATE_TRANSFERS: 80, LOOKUP_ACCOUNTS: 16, LOOKUP_TRANSFERS: 16, ECHO: 0}
RESULT_SIZE = {CREATE_ACCOUNTS: 8, CREATE_TRANSFERS: 8, LOOKUP_ACCOUNTS: 64, LOOKUP_TRANSFERS: 80, ECHO: 0}
LINK_LAST, UNLINK_LAST = 0x08, 0x10
SHAPE_PLAIN, SHAPE_REPEAT, SHAPE_NULL, SHAPE_BAD_SIZE = 0, 4, 5, 6
COUNT_OVER, COUNT_AT_LIMIT = 0xFF, 0xFE
ID_INT_MAX = 0x1F


class Seed:
    def __init__(self, server_size=5, client_mode=0, accounts=15, transfers=15, seed=0):
        self.server_size = server_size
        self.client_mode = client_mode
        self.bytes = bytearray([server_size | client_mode << 3, accounts | transfers << 4, seed])
        server_body = SERVER_MESSAGE_SIZES[server_size] - HEADER_SIZE
        client = {0: SERVER_MESSAGE_SIZES[server_size],
                  1: max(SERVER_MESSAGE_SIZES[server_size] - CLIENT_SMALLER_BYTES, CLIENT_MESSAGE_SIZE_MIN),
                  2: SERVER_MESSAGE_SIZES[server_size] + 512,
                  3: MESSAGE_SIZE_MAX}[client_mode]
        self.body = min(server_body, client - HEADER_SIZE)

    def limit(self, op):
        if op not in EVENT_SIZE:
            op = ECHO  # unknown operations read their count against echo's limit
        if EVENT_SIZE[op] == 0:
            return self.body
        return min(self.body // EVENT_SIZE[op], self.body // RESULT_SIZE[op])

    def packet(self, op, events, flags=0, shape=SHAPE_PLAIN, count=None, unknown=0):
        """events: a list of encoded events (bytes each); count defaults to len(events). A repeat
        (shape 4) of a packet before it of the same operation reads no events: pass none."""
        p = op | flags | shape << 5
        if op == UNKNOWN:
            assert flags == 0 and shape == SHAPE_PLAIN
            p = UNKNOWN | (unknown & 0x1F) << 3
        count = len(events) if count is None else count
        if count not in (COUNT_OVER, COUNT_AT_LIMIT):
            assert count <= self.limit(op) and count < COUNT_AT_LIMIT, (op, count, self.limit(op))
        self.bytes += bytes([p, count])
        for e in events:
            self.bytes += e
        return self

    def over(self, op, extra=0, flags=0):
        """A packet 1 + extra % 4 events over the limit (contents come from the target's PCG)."""
        self.bytes += bytes([op | flags, COUNT_OVER, extra])
        return self

    def at_limit(self, op, make_event):
        n = self.limit(op)
        self.bytes += bytes([op, COUNT_AT_LIMIT])
        for i in range(n):
            self.bytes += make_event(i)
        return self


def account(id_, linked=False, ledger=1, code=1, debits_limited=False, credits_limited=False, anomaly=None):
    """2 bytes (3 with an anomaly: 0 timestamp, 1 reserved, 2 reserved flag, 3 debits_posted,
    4 credits_posted, 5 ledger 0, 6 code 0, 7 a high id)."""
    assert 0 <= id_ <= ID_INT_MAX and ledger in (1, 2) and code in (1, 2)
    first = id_ | (0x20 if linked else 0) | (0xC0 if anomaly is not None else 0)
    second = (ledger - 1) | (code - 1) << 1 | (4 if debits_limited else 0) | (8 if credits_limited else 0)
    out = bytes([first, second])
    if anomaly is not None:
        out += bytes([anomaly])
    return out


def transfer(id_, debit, credit, amount, huge=False, ledger=1, linked=False, anomaly=None):
    """3 bytes (4 with an anomaly: 0 timestamp, 1 reserved, 2 reserved flag, 3 ledger 0, 4 code 0,
    5 debit int max, 6 credit int max, 7 a high id)."""
    assert 0 <= id_ <= ID_INT_MAX and 0 <= debit < 16 and 0 <= credit < 16 and 0 <= amount < 64
    first = id_ | (0x20 if linked else 0) | (0xC0 if anomaly is not None else 0)
    third = amount | (0x40 if huge else 0) | (0x80 if ledger == 2 else 0)
    out = bytes([first, debit | credit << 4, third])
    if anomaly is not None:
        out += bytes([anomaly])
    return out


def ids(*values):
    return [bytes([v]) for v in values]


def echo(data):
    return [bytes([b]) for b in data]


def seeds():
    out = {}

    # Creates that batch: 6 account packets (the first alone, the rest in one request), 4
    # transfer packets (one request), then lookups of everything.
    s = Seed(server_size=5)
    for k in range(6):
        s.packet(CREATE_ACCOUNTS, [account(2 * k + 1), account(2 * k + 2)])
    for k in range(4):
        s.packet(CREATE_TRANSFERS, [transfer(2 * k + 1, 1 + k, 2 + k, 5), transfer(2 * k + 2, 2 + k, 1 + k, 3)])
    s.packet(LOOKUP_ACCOUNTS, ids(*range(1, 14)))
    s.packet(LOOKUP_TRANSFERS, ids(*range(0, 10)))
    out["creates-batched"] = s

    # Batching reorders: a create_accounts packet submitted after a transfer that needs its
    # account joins the earlier accounts request, so the transfer succeeds (the one-by-one
    # run must use the same order).
    s = Seed(server_size=4, seed=7)
    s.packet(ECHO, echo(b"first"))
    s.packet(CREATE_ACCOUNTS, [account(1), account(2)])
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 3, 9), transfer(2, 2, 1, 4)])
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3))
    s.packet(CREATE_ACCOUNTS, [account(3)])
    s.packet(CREATE_TRANSFERS, [transfer(3, 3, 2, 1)])
    s.packet(ECHO, echo(b"second"))
    s.packet(ECHO, echo(b"third"))
    s.packet(LOOKUP_TRANSFERS, ids(1, 2, 3))
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3, 4))
    out["reorder"] = s

    # Linked chains: closed (batched), open at the end of a packet (alone: the chain fails as
    # open), failing in the middle (rolled back), and an existing id inside a chain.
    s = Seed(server_size=5, seed=3)
    s.packet(CREATE_ACCOUNTS, [account(1, linked=True), account(2)])
    s.packet(CREATE_ACCOUNTS, [account(3, linked=True), account(4, linked=True)])
    s.packet(CREATE_ACCOUNTS, [account(5, linked=True), account(6, linked=True, anomaly=5), account(7)])
    s.packet(CREATE_ACCOUNTS, [account(8), account(9, linked=True), account(1), account(10)])
    s.packet(CREATE_ACCOUNTS, [account(11)], flags=LINK_LAST)
    s.packet(CREATE_ACCOUNTS, [account(12, linked=True), account(13, linked=True)], flags=UNLINK_LAST)
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 2, 10, linked=True), transfer(2, 2, 8, 5, linked=True),
                                transfer(3, 8, 10, 1)])
    s.packet(CREATE_TRANSFERS, [transfer(4, 1, 2, 1, linked=True)])
    s.packet(CREATE_TRANSFERS, [transfer(5, 2, 1, 2)], flags=LINK_LAST)
    s.packet(LOOKUP_ACCOUNTS, ids(*range(1, 14)))
    s.packet(LOOKUP_TRANSFERS, ids(1, 2, 3, 4, 5))
    out["linked-chains"] = s

    # The batch limit: the smallest message (one account, one transfer, 80 echo bytes), with
    # packets at the limit, over it, and empty.
    s = Seed(server_size=0, seed=11)
    s.at_limit(CREATE_ACCOUNTS, lambda i: account(1 + i))
    s.packet(CREATE_ACCOUNTS, [])
    s.packet(CREATE_ACCOUNTS, [account(2)])
    s.over(CREATE_ACCOUNTS, 0)
    s.at_limit(CREATE_TRANSFERS, lambda i: transfer(1 + i, 1, 2, 1))
    s.over(CREATE_TRANSFERS, 3)
    s.at_limit(ECHO, lambda i: bytes([i]))
    s.over(ECHO, 1)
    s.packet(ECHO, [])
    s.at_limit(LOOKUP_ACCOUNTS, lambda i: bytes([1 + i]))
    s.over(LOOKUP_ACCOUNTS, 2)
    s.packet(LOOKUP_TRANSFERS, [])
    out["limit-smallest"] = s

    # Batches that fill up: 3 accounts per request (body 192), packets of 2, 1 and 3 events,
    # so a packet that does not fit the first waiting request opens another one.
    s = Seed(server_size=2, seed=5)
    s.packet(CREATE_ACCOUNTS, [account(1)])
    s.packet(CREATE_ACCOUNTS, [account(2), account(3)])
    s.packet(CREATE_ACCOUNTS, [account(4), account(5)])
    s.packet(CREATE_ACCOUNTS, [account(6)])
    s.packet(CREATE_ACCOUNTS, [account(7), account(8), account(9)])
    s.packet(CREATE_ACCOUNTS, [])
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 2, 1), transfer(2, 2, 3, 1)])
    s.packet(CREATE_TRANSFERS, [transfer(3, 3, 4, 1)])
    s.packet(CREATE_TRANSFERS, [transfer(4, 4, 5, 1)])
    s.packet(ECHO, echo(bytes(range(100))))
    s.packet(ECHO, echo(bytes(range(92))))
    s.packet(ECHO, echo(bytes(range(1))))
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3))
    out["limit-fill"] = s

    # The client's own message size is the smaller one (server body 336, client 48 less).
    s = Seed(server_size=3, client_mode=1, seed=9)
    s.at_limit(CREATE_ACCOUNTS, lambda i: account(1 + i))
    s.over(CREATE_ACCOUNTS, 0)
    s.packet(CREATE_ACCOUNTS, [account(20), account(21)])
    s.at_limit(LOOKUP_ACCOUNTS, lambda i: bytes([1 + i]))
    s.at_limit(ECHO, lambda i: bytes([i & 0xFF]))
    out["limit-client-smaller"] = s

    # A client whose message size is the default (1 MiB): the server's 4096-byte body binds.
    s = Seed(server_size=7, client_mode=3, accounts=15, transfers=15, seed=2)
    s.at_limit(CREATE_ACCOUNTS, lambda i: account(i % 31 + 1, ledger=1 + (i // 31) % 2))
    s.packet(CREATE_ACCOUNTS, [account(5)])
    s.at_limit(CREATE_TRANSFERS, lambda i: transfer(i % 31 + 1, 1 + i % 7, 8 + i % 7, 1 + i % 60))
    s.packet(LOOKUP_ACCOUNTS, ids(*range(0, 40)))
    s.packet(LOOKUP_TRANSFERS, ids(*range(0, 40)))
    out["limit-client-default"] = s

    # Packets the client refuses: operation none, unknown operations, 255, sizes that are
    # not whole events, data NULL (invalid unless empty), mixed with valid ones.
    s = Seed(server_size=4, seed=4)
    s.packet(NONE, echo(b"none"))
    s.packet(CREATE_ACCOUNTS, [account(1)])
    s.packet(UNKNOWN, echo(b"six"), unknown=0)
    s.packet(UNKNOWN, echo(b"thirty-seven"), unknown=31)
    s.packet(OP_255, echo(b"max"))
    s.packet(CREATE_ACCOUNTS, [account(2)], shape=SHAPE_BAD_SIZE)
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 2, 1)], shape=SHAPE_BAD_SIZE)
    s.packet(LOOKUP_ACCOUNTS, ids(1), shape=SHAPE_BAD_SIZE)
    s.packet(CREATE_ACCOUNTS, [account(3)], shape=SHAPE_NULL)
    s.packet(CREATE_ACCOUNTS, [], shape=SHAPE_NULL)
    s.packet(ECHO, [], shape=SHAPE_NULL)
    s.packet(ECHO, echo(b"x"), shape=SHAPE_NULL)
    s.packet(CREATE_ACCOUNTS, [account(4)])
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3, 4))
    out["invalid"] = s

    # Ids that collide: the same events again (shape repeat), exists_with_different_*, and a
    # ledger of 3 accounts and 2 transfers (too_many_accounts / too_many_transfers).
    s = Seed(server_size=5, accounts=2, transfers=1, seed=6)
    s.packet(CREATE_ACCOUNTS, [account(1), account(2, debits_limited=True)])
    s.packet(CREATE_ACCOUNTS, [], shape=SHAPE_REPEAT)
    s.packet(CREATE_ACCOUNTS, [account(1, ledger=2), account(2, code=2), account(1, credits_limited=True)])
    s.packet(CREATE_ACCOUNTS, [account(3), account(4)])
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 2, 7), transfer(2, 2, 3, 1)])
    s.packet(CREATE_TRANSFERS, [], shape=SHAPE_REPEAT)
    s.packet(CREATE_TRANSFERS, [transfer(1, 1, 3, 7), transfer(1, 1, 2, 8), transfer(3, 1, 2, 1)])
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3, 4, 1))
    s.packet(LOOKUP_TRANSFERS, ids(1, 2, 3, 1))
    out["collisions"] = s

    # Echo: sizes 0, 1, 100, 250, the limit, over it; they batch while they fit (body 512).
    s = Seed(server_size=4, seed=8)
    s.packet(ECHO, echo(b"a"))
    s.packet(ECHO, [])
    s.packet(ECHO, echo(bytes(range(100))))
    s.packet(ECHO, echo(bytes((3 * i) & 0xFF for i in range(250))))
    s.packet(ECHO, echo(bytes((i * 7) & 0xFF for i in range(200))))
    s.at_limit(ECHO, lambda i: bytes([(i * 13) & 0xFF]))
    s.over(ECHO, 3)
    s.packet(ECHO, echo(b"last"))
    out["echo"] = s

    # Balances: accounts with limits, transfers that exceed them or overflow (amounts near
    # 2^64), then lookups (balances are compared, timestamps masked).
    s = Seed(server_size=5, seed=12)
    s.packet(CREATE_ACCOUNTS, [account(1, debits_limited=True), account(2, credits_limited=True),
                               account(3), account(4, ledger=2), account(5, debits_limited=True,
                                                                           credits_limited=True)])
    s.packet(CREATE_TRANSFERS, [transfer(1, 3, 1, 10), transfer(2, 1, 3, 5), transfer(3, 1, 3, 6)])
    s.packet(CREATE_TRANSFERS, [transfer(4, 3, 2, 1), transfer(5, 2, 3, 2)])
    s.packet(CREATE_TRANSFERS, [transfer(6, 3, 1, 1, huge=True), transfer(7, 3, 1, 2, huge=True)])
    s.packet(CREATE_TRANSFERS, [transfer(8, 3, 4, 1), transfer(9, 4, 3, 1, ledger=2), transfer(10, 3, 3, 1),
                                transfer(11, 3, 9, 1), transfer(12, 0, 3, 1), transfer(13, 3, 1, 0)])
    s.packet(LOOKUP_ACCOUNTS, ids(1, 2, 3, 4, 5))
    s.packet(LOOKUP_TRANSFERS, ids(*range(1, 13)))
    out["balances"] = s

    # Every anomaly of an event: each rule of the ledger that one field breaks.
    s = Seed(server_size=6, seed=13)
    s.packet(CREATE_ACCOUNTS, [account(1 + k, anomaly=k) for k in range(8)] + [account(0), account(ID_INT_MAX)])
    s.packet(CREATE_ACCOUNTS, [account(14), account(15)])
    s.packet(CREATE_TRANSFERS, [transfer(1 + k, 14, 15, 1, anomaly=k) for k in range(8)] +
             [transfer(0, 14, 15, 1), transfer(ID_INT_MAX, 14, 15, 1), transfer(20, 14, 15, 1)])
    s.packet(LOOKUP_ACCOUNTS, ids(*range(0, 32)))
    s.packet(LOOKUP_TRANSFERS, ids(*range(0, 25)))
    out["anomalies"] = s

    # 64 packets of everything, drawn from a fixed generator.
    rng = random.Random(20240601)
    s = Seed(server_size=5, accounts=12, transfers=13, seed=21)
    for _ in range(64):
        op = rng.choice([CREATE_ACCOUNTS] * 4 + [CREATE_TRANSFERS] * 3 + [LOOKUP_ACCOUNTS, LOOKUP_TRANSFERS, ECHO,
                                                                         NONE, OP_255])
        n = rng.randint(0, min(4, s.limit(op)))
        if op == CREATE_ACCOUNTS:
            ev = [account(rng.randint(1, 24), linked=rng.random() < 0.2, ledger=rng.randint(1, 2)) for _ in range(n)]
        elif op == CREATE_TRANSFERS:
            ev = [transfer(rng.randint(1, 24), rng.randint(1, 15), rng.randint(1, 15), rng.randint(1, 9),
                           linked=rng.random() < 0.2) for _ in range(n)]
        elif op in (LOOKUP_ACCOUNTS, LOOKUP_TRANSFERS):
            ev = ids(*(rng.randint(0, 30) for _ in range(n)))
        else:
            ev = echo(bytes(rng.randint(0, 255) for _ in range(n * 5)))
        s.packet(op, ev)
    out["mixed-64"] = s
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for name, seed in seeds().items():
        with open(os.path.join(here, name + ".bin"), "wb") as f:
            f.write(bytes(seed.bytes))


if __name__ == "__main__":
    main()
