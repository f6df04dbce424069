"""Small bit-level helpers shared by the stages."""

from amaranth import Cat, Const, Mux, Value

__all__ = ["popcount", "lowest_set", "onehot_select", "onehot_index"]


def popcount(value) -> Value:
    """Number of set bits of ``value``, as a balanced adder tree.

    ``sum(v[i] for i in ...)`` chains the additions and Amaranth widens the result by one bit at
    each step, so a 256-bit input makes 256 additions up to 257 bits wide; simulators evaluate
    those as multi-word arithmetic every cycle. Pairwise addition keeps every sum only
    ``log2(width) + 1`` bits wide (and is the shallower circuit as well).

    Parameters
    ----------
    value : Value
        The bits to count.

    Returns
    -------
    Value
        Unsigned, ``bits_for(len(value))`` wide or wider.
    """
    value = Value.cast(value)
    terms = [value[i] for i in range(len(value))]
    if not terms:
        return Value.cast(0)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def lowest_set(value) -> Value:
    """The lowest set bit of ``value`` alone (zero if none): ``x & (~x + 1)``, a carry chain where a
    priority encoder would be a chain of multiplexers."""
    value = Value.cast(value)
    return value & (~value + 1)[:len(value)]


def onehot_select(onehot, values) -> Value:
    """The value at the set bit of ``onehot`` (zero if none), as an OR of masked values.

    With more than one bit set the result is the OR of their values: use it where at most one
    candidate can match, or on :func:`lowest_set`.
    """
    values = [Value.cast(v) for v in values]
    picked = Const(0, max(len(v) for v in values))
    for j, value in enumerate(values):
        picked = picked | Mux(onehot[j], value, 0)
    return picked


def onehot_index(onehot) -> Value:
    """Index of the set bit of ``onehot`` (zero if none): bit ``k`` of the index is the OR of the
    bits whose position has bit ``k`` set."""
    onehot = Value.cast(onehot)
    bits = max(1, (len(onehot) - 1).bit_length())
    return Cat(*[Cat(*[onehot[j] for j in range(len(onehot)) if j >> k & 1]).any()
                 for k in range(bits)])
