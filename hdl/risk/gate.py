"""The pre-trade risk gate: every order request toward the venue passes here or nowhere.

Pipeline (one request per cycle sustained; a request handed over in cycle ``c`` has its verdict
on the output from cycle ``c + 2``):

* cycle ``c``, handshake: the products that depend only on the request (notional
  ``price * quantity``, ``price * 10000`` for a collar in basis points) are computed from the
  input and registered with it; so are the side of the symbol's BBO it is checked against
  (price, presence, arrival cycle) and the collar's products of that price (``ref * 10000`` and
  ``ref * band``), from the BBO and band the decision will see: a BBO record or commit arriving
  in this very cycle included. While the pipeline stalls they are recomputed every cycle for the
  waiting request, so they always match the live state of a request in the decision, and the
  decision cycle neither selects the symbol's BBO nor multiplies;
* cycle ``c + 1``, the *decision*: every check reads the active limits and the live state (positions,
  open orders, BBO, token buckets, recent ids) as of this cycle and sets its own reason bit side by
  side; on the edge that ends the cycle the verdict (and, when accepted, the request on
  ``order_out``) is registered and the state takes the order's effects.

Fills and BBO records are applied on the edge of the cycle they arrive in (both are always
ready); a decision in the same cycle sees the state before them. All state sits in flip-flops so
that a decision sees the effects of the one just before it with no hazard logic.

Back-pressure stalls the whole pipeline: when ``verdict_out`` or ``order_out`` holds a record
that is not taken, no stage advances and the stalled decision is re-evaluated (and committed
only when it finally advances). Nothing is dropped or duplicated.

Reason bits and registers: ``hdl.wire.RISK_REASONS`` and ``hdl.wire.RISK_REGISTERS``; the
register port is described in :mod:`hdl.risk.limits`; the meaning of each check is written once,
executable, in :mod:`sim.model.risk`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import wire
from ..bits import lowest_set, onehot_select
from .limits import (COLLAR_BPS_BIT, COLLAR_ENABLE_BIT, LIMIT_REGISTERS, PER_SYMBOL,
                     SYMBOL_ENABLED_BIT, SYMBOL_KILL_BIT, SYMBOL_REDUCE_ONLY_BIT,
                     RiskRegisterSignature, member_name)
from .throttle import TOKEN_BITS, bucket_next, refill_tick, saturated_burst

__all__ = ["PreTradeRisk", "LATENCY"]

LATENCY = 2  # cycles from the request's handshake to its verdict on the output, when not stalled

_REASON_BIT = {name: i for i, name in enumerate(wire.RISK_REASONS)}
BPS_ONE = 10_000


def _bits_for(n: int) -> int:
    return max(1, (n - 1).bit_length())


class PreTradeRisk(wiring.Component):
    """Pre-trade risk checks on order requests, against limits and the live book.

    Parameters
    ----------
    slots : int
        Symbol slots (per-symbol limits, positions, BBO, buckets). The top uses
        ``hdl.wire.RISK_SLOTS``.
    open_orders : int
        Entries of the open-order table (our orders not yet reported done by the venue).
    dup_depth : int
        Recent client order ids remembered by the duplicate check. Besides those, the check
        refuses a new or replace order whose id an open order of the table still holds, so the
        valid entries' ids are distinct and a fill releases the order it names.
    price_bits, qty_bits : int
        Widths of price and quantity the checks compute with (at most 32). A request with a wider
        value is rejected as BAD_REQUEST; a BBO price that does not fit makes that side empty.
        Narrow widths exist for the formal proof.
    band_bits : int
        Width of the collar band; a wider register value saturates.

    Attributes
    ----------
    order_in : In(stream of ORDER_REQUEST)
    fill_in : In(stream of FILL), always ready
    bbo_in : In(stream of BBO_UPDATE), always ready, a copy of the book's output (in the top, the
        records of the gate's slots only)
    verdict_out : Out(stream of VERDICT), one per request, in request order
    order_out : Out(stream of ORDER_REQUEST), the accepted requests, toward the venue
    cycle : In(64), the free-running cycle counter
    regs : In(RiskRegisterSignature(slots)), see :mod:`hdl.risk.limits`
    """

    def __init__(self, *, slots: int = wire.RISK_SLOTS, open_orders: int = 32,
                 dup_depth: int = 16, price_bits: int = 32, qty_bits: int = 32,
                 band_bits: int = 32):
        for name, value, lo, hi in (("slots", slots, 1, 1 << 16),
                                    ("open_orders", open_orders, 1, 1024),
                                    ("dup_depth", dup_depth, 1, 1024),
                                    ("price_bits", price_bits, 2, 32),
                                    ("qty_bits", qty_bits, 2, 32),
                                    ("band_bits", band_bits, 1, 32)):
            if not isinstance(value, int) or not lo <= value <= hi:
                self._MustUse__silence = True   # a refused component is not an unused one
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], not {value!r}")
        self.slots = slots
        self.open_orders = open_orders
        self.dup_depth = dup_depth
        self.price_bits, self.qty_bits, self.band_bits = price_bits, qty_bits, band_bits
        super().__init__({
            "order_in": In(stream.Signature(wire.ORDER_REQUEST.layout)),
            "fill_in": In(stream.Signature(wire.FILL.layout)),
            # Always ready, but with a real ready signal: a Const port does not convert to
            # Verilog, and the top can connect the book's output through a splitter as is.
            "bbo_in": In(stream.Signature(wire.BBO_UPDATE.layout)),
            "verdict_out": Out(stream.Signature(wire.VERDICT.layout)),
            "order_out": Out(stream.Signature(wire.ORDER_REQUEST.layout)),
            "cycle": In(64),
            "regs": In(RiskRegisterSignature(slots)),
        })
        # High when the gate's state may change on the next edge; see the end of elaborate().
        self.busy = Signal(name="busy")

    def elaborate(self, platform):
        m = Module()
        S, N, D = self.slots, self.open_orders, self.dup_depth
        PB, QB = self.price_bits, self.qty_bits
        slot_bits, entry_bits = _bits_for(S), _bits_for(N)
        open_bits = QB + entry_bits + 1
        regs = self.regs
        cycle = self.cycle

        # ---- active limit set: copied from the shadow registers on one edge ------------------
        act = {}
        for reg in LIMIT_REGISTERS:
            name = member_name(reg.name)
            src = getattr(regs, name)
            if reg.name in PER_SYMBOL:
                sigs = [Signal(32, name=f"active_{name}_{i}") for i in range(S)]
                with m.If(regs.commit):
                    m.d.sync += [sig.eq(src[i]) for i, sig in enumerate(sigs)]
                act[name] = Array(sigs)
            else:
                sig = Signal(32, name=f"active_{name}")
                with m.If(regs.commit):
                    m.d.sync += sig.eq(src)
                act[name] = sig
        self.active = act  # for the formal harness
        # Registered: a change on ``regs.kill`` takes effect on the next cycle. That port is the
        # bank's control register, which takes a write on the edge that ends its strobe's cycle,
        # so a RISK_KILL write refuses orders from the second cycle after its strobe, where a
        # commit (which acts on the strobe itself) takes effect from the first.
        kill = Signal()
        m.d.sync += kill.eq(regs.kill[0])

        # ---- state ---------------------------------------------------------------------------
        position = Array(Signal(signed(64), name=f"position_{i}") for i in range(S))
        open_qty = Array(Signal(open_bits, name=f"open_{'sell' if k & 1 else 'buy'}_{k >> 1}")
                         for k in range(2 * S))           # index Cat(sell, slot)
        bid = Array(Signal(PB, name=f"bid_{i}") for i in range(S))
        ask = Array(Signal(PB, name=f"ask_{i}") for i in range(S))
        bid_valid = Array(Signal(name=f"bid_valid_{i}") for i in range(S))
        ask_valid = Array(Signal(name=f"ask_valid_{i}") for i in range(S))
        bbo_stamp = Array(Signal(64, name=f"bbo_stamp_{i}") for i in range(S))
        tokens = Signal(TOKEN_BITS)
        symbol_tokens = Array(Signal(TOKEN_BITS, name=f"symbol_tokens_{i}") for i in range(S))
        t_valid = Array(Signal(name=f"open_valid_{j}") for j in range(N))
        t_id = Array(Signal(64, name=f"open_id_{j}") for j in range(N))
        t_slot = Array(Signal(slot_bits, name=f"open_slot_{j}") for j in range(N))
        t_sell = Array(Signal(name=f"open_sell_{j}") for j in range(N))
        t_price = Array(Signal(PB, name=f"open_price_{j}") for j in range(N))
        t_rem = Array(Signal(QB, name=f"open_remaining_{j}") for j in range(N))
        d_valid = [Signal(name=f"recent_valid_{k}") for k in range(D)]
        d_id = [Signal(64, name=f"recent_id_{k}") for k in range(D)]
        d_next = Signal(_bits_for(D))
        # Entries in use: a counter the decision books into and a closing fill releases, kept
        # equal to the number of valid entries (the formal proof asserts it on every cycle). A
        # register, not a count of the N valid bits, so the open-order check starts from a
        # flip-flop.
        open_count = Signal(entry_bits + 1)
        self.state = dict(position=position, open_qty=open_qty, t_valid=t_valid, t_id=t_id,
                          t_slot=t_slot, t_sell=t_sell, t_price=t_price, t_rem=t_rem, bid=bid,
                          ask=ask, bid_valid=bid_valid, ask_valid=ask_valid,
                          bbo_stamp=bbo_stamp, kill=kill, open_count=open_count)

        # ---- pipeline control ---------------------------------------------------------------
        vo, oo = self.verdict_out, self.order_out
        advance = Signal()
        m.d.comb += advance.eq((~vo.valid | vo.ready) & (~oo.valid | oo.ready))
        m.d.comb += self.order_in.ready.eq(advance)

        # ---- stage 1: register the request with the products that depend only on it --------
        s2 = Signal(wire.ORDER_REQUEST.layout)
        s2_valid, s2_ingress = Signal(), Signal(wire.CYCLE_STAMP_BITS)
        s2_notional = Signal(PB + QB)
        s2_price_bps = Signal(PB + 14)
        s2_ref_bps = Signal(PB + 14)
        s2_ref_band = Signal(PB + self.band_bits)
        req = self.order_in.payload
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(self.order_in.valid),
                s2.eq(req),
                s2_ingress.eq(cycle),
                s2_notional.eq(req.price[:PB] * req.quantity[:QB]),
                s2_price_bps.eq(req.price[:PB] * BPS_ONE),
            ]

        # ---- stage 2: the decision -------------------------------------------------------------
        kind = s2.kind
        sell = s2.flags.sell
        price, qty = s2.price[:PB], s2.quantity[:QB]
        slot_ok = s2.slot < S
        idx = s2.slot[:slot_bits]
        is_cancel = kind == wire.ORDER_KIND_CANCEL
        is_replace = kind == wire.ORDER_KIND_REPLACE
        opening = (kind == wire.ORDER_KIND_NEW) | is_replace
        known_kind = opening | is_cancel

        # Every value of the decision is computed under ``s2_valid`` and is zero without a
        # request: nothing reads it then, and a simulator skips the whole decision on the cycles
        # (most of them) that carry no request.
        ctl = Signal(32)
        pos = Signal(signed(64))
        open_same_side = Signal(open_bits)
        with m.If(s2_valid):
            m.d.comb += [ctl.eq(act["symbol_control"][idx]), pos.eq(position[idx]),
                         open_same_side.eq(open_qty[Cat(sell, idx)])]
        worst_buy = pos + open_same_side + qty
        worst_sell = pos - open_same_side - qty

        dup_hit = Signal()
        open_hit = Signal()    # the request's own id is held by an open order
        orig_hit = Signal()
        crosses_own = Signal()
        with m.If(s2_valid):
            m.d.comb += [
                dup_hit.eq(Cat(d_valid[k] & (d_id[k] == s2.client_order_id)
                               for k in range(D)).any()),
                open_hit.eq(Cat(t_valid[j] & (t_id[j] == s2.client_order_id)
                                for j in range(N)).any()),
                orig_hit.eq(Cat(t_valid[j] & (t_id[j] == s2.orig_client_order_id)
                                for j in range(N)).any()),
                crosses_own.eq(Cat(
                    t_valid[j] & (t_slot[j] == idx) & (t_sell[j] != sell)
                    & Mux(sell, t_price[j] >= price, t_price[j] <= price)
                    for j in range(N)).any()),
            ]

        # Collar against the live BBO of the symbol.
        cfg = act["collar_config"]

        def saturated_band(value):
            return Mux(value[self.band_bits:] != 0, (1 << self.band_bits) - 1,
                       value[:self.band_bits])

        band = Signal(self.band_bits)
        m.d.comb += band.eq(saturated_band(act["collar_band"]))

        # The BBO side and its products for the request in stage 2 on the next cycle (the one
        # entering, or the one waiting), from the next cycle's BBO and band: a BBO record for
        # that slot on this cycle, or a commit, is what the state holds then.
        n_idx, n_sell = Signal(slot_bits), Signal()
        m.d.comb += [n_idx.eq(Mux(advance, req.slot[:slot_bits], idx)),
                     n_sell.eq(Mux(advance, req.flags.sell, sell))]
        bbo = self.bbo_in.payload
        bbo_ok = Signal()
        m.d.comb += bbo_ok.eq(self.bbo_in.valid & (bbo.slot < S))
        n_ref, n_side_valid, n_stamp = Signal(PB), Signal(), Signal(64)
        with m.If(bbo_ok & (bbo.slot[:slot_bits] == n_idx)):
            m.d.comb += [
                n_ref.eq(Mux(n_sell, bbo.bid_price[:PB], bbo.ask_price[:PB])),
                n_side_valid.eq(Mux(n_sell, bbo.flags.bid_valid & (bbo.bid_price[PB:] == 0),
                                    bbo.flags.ask_valid & (bbo.ask_price[PB:] == 0))),
                n_stamp.eq(cycle),
            ]
        with m.Else():
            m.d.comb += [n_ref.eq(Mux(n_sell, bid[n_idx], ask[n_idx])),
                         n_side_valid.eq(Mux(n_sell, bid_valid[n_idx], ask_valid[n_idx])),
                         n_stamp.eq(bbo_stamp[n_idx])]
        n_band = Signal(self.band_bits)
        m.d.comb += n_band.eq(Mux(regs.commit, saturated_band(regs.collar_band), band))
        # Loaded on every cycle that has a request next (stalled ones included), so they always
        # hold the live values at a decision; an idle cycle leaves them, and a simulator skips
        # them.
        ref, side_valid, stamp = Signal(PB), Signal(), Signal(64)
        with m.If(Mux(advance, self.order_in.valid, s2_valid)):
            m.d.sync += [ref.eq(n_ref), side_valid.eq(n_side_valid), stamp.eq(n_stamp),
                         s2_ref_bps.eq(n_ref * BPS_ONE), s2_ref_band.eq(n_ref * n_band)]
        age = (cycle - stamp)[:64]
        stale = (act["bbo_max_age"] != 0) & (age > act["bbo_max_age"])
        inside_ticks = Mux(sell, price + band >= ref, price <= ref + band)
        ref_bps, ref_band = s2_ref_bps, s2_ref_band
        inside_bps = Mux(sell, s2_price_bps + ref_band >= ref_bps,
                         s2_price_bps <= ref_bps + ref_band)
        inside = side_valid & ~stale & Mux(cfg[COLLAR_BPS_BIT], inside_bps, inside_ticks)

        notional_limit = Cat(act["max_notional_lo"], act["max_notional_hi"])
        reason = {
            "KILL_SWITCH": opening & (kill | slot_ok & ctl[SYMBOL_KILL_BIT]),
            "SYMBOL_DISABLED": ~slot_ok | opening & ~ctl[SYMBOL_ENABLED_BIT],
            "RESTRICTED": opening & slot_ok & ctl[SYMBOL_REDUCE_ONLY_BIT]
                          & Mux(sell, worst_sell < 0, worst_buy > 0),
            "BAD_REQUEST": ~known_kind | opening & (
                (price == 0) | (qty == 0) | (s2.price[PB:] != 0) | (s2.quantity[QB:] != 0)),
            "MAX_QUANTITY": opening & slot_ok & (qty > act["max_order_qty"][idx]),
            "MAX_NOTIONAL": opening & (s2_notional > notional_limit),
            "PRICE_COLLAR": opening & slot_ok & cfg[COLLAR_ENABLE_BIT] & ~inside,
            "POSITION_LIMIT": opening & slot_ok & Mux(sell, -worst_sell > act["max_short"][idx],
                                                      worst_buy > act["max_long"][idx]),
            "OPEN_ORDERS": opening & ((open_count >= act["max_open_orders"])
                                      | (open_count >= N)),
            "RATE_GLOBAL": opening & (tokens == 0),
            "RATE_SYMBOL": opening & slot_ok & (symbol_tokens[idx] == 0),
            "DUPLICATE_ID": dup_hit | opening & open_hit,
            "SELF_TRADE": opening & slot_ok & crosses_own,
            "UNKNOWN_ORDER": (is_cancel | is_replace) & ~orig_hit,
        }
        assert set(reason) == set(wire.RISK_REASONS)
        reasons = Signal(len(wire.RISK_REASONS))
        with m.If(s2_valid):
            m.d.comb += reasons.eq(Cat(reason[name] for name in wire.RISK_REASONS))
        accept = Signal()
        decide = Signal()      # the request in stage 2 leaves it on this edge
        books = Signal()       # ... and opens an order in the table
        m.d.comb += [
            accept.eq(reasons == 0),
            decide.eq(advance & s2_valid),
            books.eq(decide & accept & opening),
        ]
        self.decision = dict(valid=s2_valid, decide=decide, accept=accept, reasons=reasons,
                             request=s2, opening=opening, notional=s2_notional,
                             price_bps=s2_price_bps,
                             ref_bps=s2_ref_bps, ref_band=s2_ref_band, band=band, ref=ref,
                             side_valid=side_valid, stamp=stamp)

        # ---- outputs -----------------------------------------------------------------------
        with m.If(vo.valid & vo.ready):
            m.d.sync += vo.valid.eq(0)
        with m.If(oo.valid & oo.ready):
            m.d.sync += oo.valid.eq(0)
        with m.If(advance):
            m.d.sync += [
                vo.valid.eq(s2_valid),
                oo.valid.eq(s2_valid & accept),
            ]
            with m.If(s2_valid):
                m.d.sync += [
                    vo.payload.client_order_id.eq(s2.client_order_id),
                    vo.payload.reasons.eq(reasons),
                    vo.payload.ingress_cycle.eq(s2_ingress),
                    vo.payload.egress_cycle.eq(cycle + 1),
                    vo.payload.slot.eq(s2.slot),
                    vo.payload.flags.accepted.eq(accept),
                    vo.payload.kind.eq(kind),
                    oo.payload.eq(s2),
                ]

        # ---- effects of the decision ----------------------------------------------------------
        with m.If(decide):
            m.d.sync += d_next.eq(Mux(d_next == D - 1, 0, d_next + 1))
            for k in range(D):
                with m.If(d_next == k):
                    m.d.sync += [d_valid[k].eq(1), d_id[k].eq(s2.client_order_id)]

        # The lowest free entry and, below, the lowest matching one, as one-hot vectors
        # (hdl.bits.lowest_set: a carry chain instead of a chain of multiplexers). The valid
        # entries' ids are distinct (the duplicate check), so at most one entry matches a fill.
        valid_bits = Cat(*t_valid)
        free = Signal(N)                   # lowest free table entry (read only when booking)
        with m.If(s2_valid):
            m.d.comb += free.eq(lowest_set(~valid_bits))

        # ---- fills -----------------------------------------------------------------------
        fill = self.fill_in.payload
        m.d.comb += self.fill_in.ready.eq(1)
        fill_ok = Signal()
        m.d.comb += fill_ok.eq(self.fill_in.valid & (fill.slot < S))
        # The search and everything after it is computed only with a fill offered (zero
        # otherwise), like the decision.
        fill_hits = Signal(N)
        fill_hit = Signal()
        hit = Signal(N)                    # lowest matching entry
        e_rem = Signal(QB)
        released = Signal(QB)
        rem_after = Signal(QB)             # the entry's remaining quantity after this fill
        with m.If(self.fill_in.valid):
            m.d.comb += [
                fill_hits.eq(Cat(t_valid[j] & (t_id[j] == fill.client_order_id)
                                 for j in range(N))),
                fill_hit.eq(fill_ok & fill_hits.any()),
                hit.eq(lowest_set(fill_hits)),
                e_rem.eq(onehot_select(hit, t_rem)),
                released.eq(Mux(fill.flags.done | (fill.quantity >= e_rem),
                                e_rem, fill.quantity)),
                rem_after.eq(e_rem - released),     # released <= e_rem: never below zero
            ]
        with m.If(fill_ok):
            f_idx = fill.slot[:slot_bits]
            m.d.sync += position[f_idx].eq(
                position[f_idx] + Mux(fill.flags.sell, -fill.quantity, fill.quantity))

        with m.If(books | fill_hit):
            for j in range(N):
                with m.If(books & free[j]):
                    m.d.sync += [t_valid[j].eq(1), t_id[j].eq(s2.client_order_id),
                                 t_slot[j].eq(idx), t_sell[j].eq(sell), t_price[j].eq(price),
                                 t_rem[j].eq(qty)]
                with m.If(fill_hit & hit[j]):
                    # one subtractor on the hit entry, not one per entry
                    m.d.sync += t_rem[j].eq(rem_after)
                    with m.If(fill.flags.done):
                        m.d.sync += t_valid[j].eq(0)

        # A booking takes a free entry, a closing fill frees a valid one: never the same entry.
        with m.If(books | fill_hit & fill.flags.done):
            m.d.sync += open_count.eq(open_count + books - (fill_hit & fill.flags.done))

        # Open quantity: the decision adds, the fill releases; both may hit one counter.
        o_key = Cat(sell, idx)
        f_key = Signal(slot_bits + 1)
        with m.If(self.fill_in.valid):
            m.d.comb += f_key.eq(Cat(onehot_select(hit, t_sell), onehot_select(hit, t_slot)))
        same = o_key == f_key
        with m.If(books):
            m.d.sync += open_qty[o_key].eq(
                open_qty[o_key] + qty - Mux(fill_hit & same, released, 0))
        with m.If(fill_hit):
            m.d.sync += open_qty[f_key].eq(
                open_qty[f_key] - released + Mux(books & same, qty, 0))

        # ---- BBO -----------------------------------------------------------------------------
        m.d.comb += self.bbo_in.ready.eq(1)
        with m.If(bbo_ok):
            b_idx = bbo.slot[:slot_bits]
            m.d.sync += [
                bid[b_idx].eq(bbo.bid_price[:PB]),
                ask[b_idx].eq(bbo.ask_price[:PB]),
                bid_valid[b_idx].eq(bbo.flags.bid_valid & (bbo.bid_price[PB:] == 0)),
                ask_valid[b_idx].eq(bbo.flags.ask_valid & (bbo.ask_price[PB:] == 0)),
                bbo_stamp[b_idx].eq(cycle),
            ]

        # ---- token buckets -------------------------------------------------------------------
        m.d.sync += tokens.eq(bucket_next(
            tokens, saturated_burst(act["rate_burst"]),
            refill_tick(cycle, act["rate_shift"]), books))
        sym_burst = Signal(TOKEN_BITS)
        sym_tick = Signal()
        m.d.comb += [sym_burst.eq(saturated_burst(act["symbol_rate_burst"])),
                     sym_tick.eq(refill_tick(cycle, act["symbol_rate_shift"]))]
        for i in range(S):
            m.d.sync += symbol_tokens[i].eq(bucket_next(
                symbol_tokens[i], sym_burst, sym_tick, books & (idx == i)))
        # Every bucket holds its burst after this edge (bursts as they are after it: a commit
        # may change them). Only the activity below reads it, and synthesis removes it. The
        # buckets' next values are written out again, not shared with the updates above: a
        # simulator then computes them only where the registers are updated.
        full = Signal()
        burst_after = saturated_burst(Mux(regs.commit, regs.rate_burst, act["rate_burst"]))
        sym_burst_after = saturated_burst(Mux(regs.commit, regs.symbol_rate_burst,
                                              act["symbol_rate_burst"]))
        m.d.sync += full.eq(
            (bucket_next(tokens, saturated_burst(act["rate_burst"]),
                         refill_tick(cycle, act["rate_shift"]), books) == burst_after)
            & Cat(bucket_next(symbol_tokens[i], saturated_burst(act["symbol_rate_burst"]),
                              refill_tick(cycle, act["symbol_rate_shift"]), books & (idx == i))
                  == sym_burst_after for i in range(S)).all())

        # ---- counters ------------------------------------------------------------------------
        counters = [
            (regs.accepted, decide & accept),
            (regs.rejected, decide & ~accept),
            (regs.fills, fill_ok),
            (regs.fills_unknown, fill_ok & ~fill_hit),
        ] + [(regs.rejects[i], decide & reasons[i]) for i in range(len(wire.RISK_REASONS))]
        for counter, inc in counters:
            with m.If(regs.counters_clear):
                m.d.sync += counter.eq(0)
            with m.Elif(inc):
                m.d.sync += counter.eq(counter + 1)
        dropped = (self.fill_in.valid & ~fill_ok) + (self.bbo_in.valid & ~bbo_ok)
        with m.If(regs.counters_clear):
            m.d.sync += regs.dropped.eq(0)
        with m.Else():
            m.d.sync += regs.dropped.eq(regs.dropped + dropped)
        m.d.comb += [regs.open_orders.eq(open_count), regs.open_capacity.eq(N)]

        # Activity, for the simulation harness (nothing in the gateware reads it). With it low
        # nothing above changes on the next edge: a request, fill or BBO record offered or in
        # the pipeline, a commit, a counter clear or a kill write each raise it, and so does a
        # bucket below or above its burst (it refills on ticks, or is clipped after a commit).
        # ``full`` starts low, so the gate runs until its first edge out of reset sets it.
        m.d.comb += self.busy.eq(ResetSignal() | self.order_in.valid | s2_valid | vo.valid
                                 | oo.valid | self.fill_in.valid | self.bbo_in.valid
                                 | regs.commit | regs.counters_clear | (regs.kill[0] != kill)
                                 | ~full)
        return m

