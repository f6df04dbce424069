"""Write the built-in demo data set, host/data/demo.itch.

A seeded synthetic ITCH 5.0 stream in the NASDAQ historical framing: a system event, stock
directory messages for eight symbols, then add orders ('A' and 'F') on both sides around a moving
mid price. It exercises the book stage the current gateware implements in full, so every row of
the demo's CSV comes from the gateware.

    python -m tools.make_demo_stream [--messages N] [--seed S]
"""

import argparse
from pathlib import Path

from sim.gen.itchgen import generate

OUT = Path(__file__).resolve().parents[1] / "host" / "data" / "demo.itch"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    buf = generate(args.seed, args.messages, n_symbols=8, types="AF")
    args.out.write_bytes(buf)
    print(f"wrote {args.out} ({args.messages} messages, {len(buf)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
