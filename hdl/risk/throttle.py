"""Token buckets for the order-rate throttle.

A bucket gains one token on every cycle whose counter value has its low ``shift`` bits all zero
(one token per ``2**shift`` cycles, aligned to the free-running cycle counter so that a reference
model can count the refills exactly from cycle numbers), holds at most ``burst`` tokens, and loses
one per accepted order. Tokens are 16 bits wide; bursts above 65535 saturate.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, Value, Const

__all__ = ["TOKEN_BITS", "refill_tick", "saturated_burst", "bucket_next"]

TOKEN_BITS = 16


def refill_tick(cycle: Value, shift_register: Value) -> Value:
    """1 on cycles where the bucket gains a token; the shift is the register's bits 0-5."""
    shift = shift_register[:6]
    # the low ``shift`` bits, as a right shift of all ones (a left shift by a signal would widen
    # the mask to 127 bits, which a simulator then handles as a multi-word value every cycle)
    mask = Const(2**64 - 1, 64) >> (Const(64, 7) - shift)[:7]
    return (cycle[:64] & mask) == 0


def saturated_burst(burst_register: Value) -> Value:
    """The burst register clipped to what a 16-bit bucket holds."""
    return Mux(burst_register[TOKEN_BITS:] != 0, (1 << TOKEN_BITS) - 1,
               burst_register[:TOKEN_BITS])


def bucket_next(tokens: Value, burst: Value, tick: Value, consume: Value) -> Value:
    """min(burst, tokens - consume + tick), the bucket after one cycle."""
    level = tokens - consume + tick      # consume only when tokens > 0, so never negative
    return Mux(level > burst, burst, level)[:TOKEN_BITS]
