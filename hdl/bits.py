"""Small bit-level helpers shared by the stages."""

from amaranth import Value

__all__ = ["popcount"]


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
