"""Seeded market-data streams for the feed stage's tests: MoldUDP64 sessions with gaps,
duplicates, overlaps, heartbeats and end of session; level updates; fuzzed frames."""

from __future__ import annotations

import random

from hdl import wire
from host.feed.framing import (build_packet, build_heartbeat, build_end_of_session,
                               frame_historical)
from sim.gen.itchgen import generate_messages


def level_update(rng: random.Random, slot: int) -> bytes:
    """One LEVEL_UPDATE message with seeded fields."""
    return wire.LEVEL_UPDATE.pack(
        message_type=wire.LEVEL_UPDATE_TYPE, flags=rng.randrange(16), slot=slot,
        price=rng.randrange(1, 2**32), size=rng.randrange(2**32),
        exchange_seq=rng.randrange(2**64))


def historical_frames(messages, rng: random.Random, mean_per_frame: int = 20) -> list[bytes]:
    """Cut framed messages into frames of a random number of whole messages."""
    frames, i = [], 0
    while i < len(messages):
        k = rng.randint(1, 2 * mean_per_frame)
        frames.append(frame_historical(messages[i:i + k]))
        i += k
    return frames


def mold_frames(seed: int, n_messages: int, *, sessions: int = 2) -> list[bytes]:
    """MoldUDP64 packets of generated order flow over ``sessions`` interleaved sessions, with
    in-order packets, gaps (packets never sent), duplicates, overlaps, heartbeats (some revealing
    a gap), end of session and packets after it, and a packet of a session too many."""
    rng = random.Random(seed)
    msgs = generate_messages(seed, n_messages, n_symbols=6)
    names = [f"SESS{k:06d}".encode() for k in range(sessions)]
    nxt = {s: 1 for s in names}
    sent = {s: [] for s in names}      # (seq, messages) of packets sent, for repeats
    frames = []
    i = 0
    while i < len(msgs):
        s = rng.choice(names)
        r = rng.random()
        if r < 0.08 and sent[s]:                 # duplicate of an earlier packet
            seq, block = rng.choice(sent[s])
            frames.append(build_packet(s, seq, block))
        elif r < 0.14 and sent[s]:               # overlap: last packet plus new messages
            seq, block = sent[s][-1]
            k = rng.randint(1, 3)
            new = msgs[i:i + k]
            i += len(new)
            frames.append(build_packet(s, seq, list(block) + new))
            nxt[s] = seq + len(block) + len(new)
            sent[s].append((seq, tuple(block) + tuple(new)))
        elif r < 0.20:                           # heartbeat, sometimes ahead (a gap)
            ahead = rng.choice([0, 0, 3])
            nxt[s] += ahead
            frames.append(build_heartbeat(s, nxt[s]))
        elif r < 0.26:                           # lost packet: a gap for the next one
            nxt[s] += rng.randint(1, 5)
        else:
            k = rng.randint(1, 12)
            block = msgs[i:i + k]
            i += len(block)
            frames.append(build_packet(s, nxt[s], block))
            sent[s].append((nxt[s], tuple(block)))
            nxt[s] += len(block)
    end = names[0]
    frames.append(build_end_of_session(end, nxt[end]))
    frames.append(build_packet(end, nxt[end], msgs[:2]))            # after the end: dropped
    frames.append(build_heartbeat(end, nxt[end] + 5))               # after the end: no gap
    for k in range(5):                                              # table of 4 sessions
        frames.append(build_packet(f"EXTRA{k:05d}".encode(), 1, msgs[:1]))
    return frames


def fuzz_frames(seed: int, n_frames: int, *, mold: bool = False) -> list[bytes]:
    """Frames of valid messages corrupted in every way the stage must survive: bad lengths,
    unknown types, zero lengths, cut frames, random bytes, flipped bytes."""
    rng = random.Random(seed)
    pool = generate_messages(seed, 400, n_symbols=4)
    pool += [level_update(rng, rng.randrange(300)) for _ in range(20)]
    frames = []
    seq = 1
    for _ in range(n_frames):
        block = [rng.choice(pool) for _ in range(rng.randint(1, 8))]
        body = bytearray(frame_historical(block))
        r = rng.random()
        if r < 0.12:                      # a wrong length prefix somewhere
            p = rng.choice(_prefix_positions(body))
            body[p:p + 2] = rng.choice([0, 1, 11, 13, 36, 51, 300, 0xFFFF]).to_bytes(2, "big")
        elif r < 0.22:                    # an unknown type byte
            p = rng.choice(_prefix_positions(body))
            body[p + 2] = rng.choice(b"aZ#\x00\xff")
        elif r < 0.34:                    # cut short anywhere
            body = body[:rng.randrange(len(body))]
        elif r < 0.42:                    # random bytes
            body = bytearray(rng.randbytes(rng.randint(1, 120)))
        elif r < 0.52:                    # flipped bytes
            for _ in range(rng.randint(1, 4)):
                p = rng.randrange(len(body))
                body[p] ^= 1 << rng.randrange(8)
        elif r < 0.56:                    # a zero-length prefix appended
            body += b"\x00\x00"
        if mold:
            # The header stays valid (corrupt headers would only open sessions); the sequence
            # mostly follows on, sometimes jumps ahead (a gap) or back (a repeat).
            body = (b"FUZZSESS01" + seq.to_bytes(8, "big") + len(block).to_bytes(2, "big")
                    + bytes(body))
            seq = max(1, seq + (len(block) if rng.random() < 0.9 else rng.randint(-4, 6)))
        frames.append(bytes(body))
    return frames


def _prefix_positions(body: bytes) -> list[int]:
    pos, out = 0, []
    while pos + 2 <= len(body):
        out.append(pos)
        pos += 2 + int.from_bytes(body[pos:pos + 2], "big")
    return out
