#!/usr/bin/env python3
"""Writes the seed inputs of the frames fuzz target (fuzz/fuzz_frames.c has the format):
    python3 corpus/frames/make_seeds.py     # rewrites corpus/frames/*.bin, the same bytes every time
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
# Byte 0: bits 0-1 the reader's message_size_max (256, 1024, 4096, 16384), bits 2-7 the split seed.
SIZE_256, SIZE_1024, SIZE_4096, SIZE_16384 = 0, 1, 2, 3
HEADER_FLIP, BODY_FLIP, CLUSTER, RESERVED, SIZE = 1, 2, 4, 8, 16
REGISTER, REQUEST, REPLY, EVICTION, PING, PONG = 1, 2, 3, 4, 5, 6
CREATE_ACCOUNTS, CREATE_TRANSFERS, LOOKUP_ACCOUNTS, LOOKUP_TRANSFERS, ECHO = 1, 2, 3, 4, 5


def world(size_code, split_seed=0):
    return bytes([size_code | (split_seed << 2)])


def message(command, operation=0, body=b'', flags=0, extra=b''):
    """A MESSAGE chunk; extra: the bytes its flags read after the body, in the target's order
    (reserved index, size field, header byte to flip, body byte to flip)."""
    return bytes([flags, command | (operation << 3)]) + struct.pack('<H', len(body)) + body + extra


def raw(data):
    return bytes([1 << 6, len(data)]) + data


def repeat(times):
    return bytes([2 << 6 | (times - 1)])


def cut(bytes_less):
    return bytes([3 << 6 | (bytes_less - 1)])


SEEDS = {
    'valid-every-command': world(SIZE_1024, 1) + message(REGISTER) + message(REQUEST, CREATE_ACCOUNTS, bytes(range(128)))
    + message(REPLY) + message(REPLY, CREATE_TRANSFERS, b'\x01' * 16) + message(EVICTION) + message(PING)
    + message(PONG) + message(REQUEST, ECHO, b'hello echo'),
    'valid-large-4096': world(SIZE_4096, 2) + message(REQUEST, ECHO, bytes(3900)) + message(REQUEST, CREATE_TRANSFERS, bytes(1280)),
    'valid-small-256-repeated': world(SIZE_256, 3) + message(REQUEST, ECHO, bytes(128)) + message(PING) + repeat(4),
    'valid-16384-zero-filled': world(SIZE_16384, 4) + bytes([0, REQUEST | ECHO << 3]) + struct.pack('<H', 16000),
    'bad-header-checksum': world(SIZE_1024, 5) + message(PING) + message(PING, flags=HEADER_FLIP, extra=b'\x05'),
    'bad-body-checksum': world(SIZE_1024, 6) + message(REQUEST, ECHO, b'abcdef', flags=BODY_FLIP, extra=b'\x02'),
    'wrong-cluster': world(SIZE_1024, 7) + message(PONG) + message(PING, flags=CLUSTER),
    'reserved-not-zero': world(SIZE_1024, 8) + message(PING, flags=RESERVED, extra=b'\x03'),
    'size-below-header': world(SIZE_1024, 9) + message(PING, flags=SIZE, extra=struct.pack('<H', 64)),
    'size-above-max': world(SIZE_1024, 10) + message(PING, flags=SIZE, extra=struct.pack('<H', 2000)),
    'size-misframed': world(SIZE_1024, 11) + message(REQUEST, ECHO, b'x' * 40, flags=SIZE, extra=struct.pack('<H', 150))
    + message(PING),
    'unknown-command': world(SIZE_1024, 12) + message(0) + message(7),
    'unknown-operation': world(SIZE_1024, 13) + message(REQUEST, 0) + message(REQUEST, 6) + message(PING, LOOKUP_ACCOUNTS),
    'raw-garbage': world(SIZE_1024, 14) + raw(bytes(range(200))) + message(PING),
    'repeat-then-cut': world(SIZE_1024, 15) + message(REQUEST, ECHO, b'repeat me') + repeat(8) + cut(5),
    'cut-inside-header': world(SIZE_1024, 16) + message(PING) + message(PONG) + cut(60),
}

for name, data in SEEDS.items():
    with open(os.path.join(HERE, name + '.bin'), 'wb') as f:
        f.write(data)
print('corpus/frames: %d seeds written' % len(SEEDS))
