"""host.link.beats.pack_beats: byte streams into MD_BEAT records, frame by frame, against a
byte-by-byte reference, on both of its copy paths."""

import numpy as np
import pytest

from hdl import wire
from host.link import beats as beats_module
from host.link.beats import pack_beats

LAST = wire.MD_BEAT.flag("flags", "last")


def _reference(buf: bytes, ends) -> list[tuple[bytes, int, int]]:
    """(eight data bytes, keep, flags) per beat, one frame at a time."""
    out, start = [], 0
    for end in ends:
        frame = buf[start:end]
        for at in range(0, len(frame), 8):
            chunk = frame[at:at + 8]
            last = at + 8 >= len(frame)
            out.append((chunk.ljust(8, b"\0"), (1 << len(chunk)) - 1, LAST if last else 0))
        start = end
    return out


def _as_tuples(beats: np.ndarray) -> list[tuple[bytes, int, int]]:
    return [(int(b["data"]).to_bytes(8, "little"), int(b["keep"]), int(b["flags"]))
            for b in beats]


@pytest.mark.parametrize("mean_frame", [3, 9, 31, 200, 3000])
@pytest.mark.parametrize("path", ["per frame", "per byte"])
def test_beats_match_the_byte_by_byte_reference(monkeypatch, mean_frame, path):
    # Arrange: random frames, lengths 1 and up, multiples of 8 among them
    monkeypatch.setattr(beats_module, "_BYTES_PER_COPY", 0 if path == "per frame" else 1 << 40)
    rng = np.random.default_rng(mean_frame)
    lengths = rng.integers(1, 2 * mean_frame + 1, size=300)
    lengths[::7] = 8 * rng.integers(1, 4, size=len(lengths[::7]))
    ends = np.cumsum(lengths)
    buf = rng.integers(0, 256, size=int(ends[-1]), dtype=np.uint8).tobytes()

    # Act
    beats = pack_beats(buf, ends)

    # Assert
    assert beats.dtype == wire.MD_BEAT.dtype
    assert _as_tuples(beats) == _reference(buf, ends.tolist())


def test_both_paths_give_the_same_records(monkeypatch):
    rng = np.random.default_rng(5)
    ends = np.cumsum(rng.integers(1, 100, size=2000))
    buf = rng.integers(0, 256, size=int(ends[-1]), dtype=np.uint8).tobytes()

    monkeypatch.setattr(beats_module, "_BYTES_PER_COPY", 0)
    per_frame = pack_beats(buf, ends)
    monkeypatch.setattr(beats_module, "_BYTES_PER_COPY", 1 << 40)
    per_byte = pack_beats(buf, ends)

    assert per_frame.tobytes() == per_byte.tobytes()


@pytest.mark.parametrize("ends", [[], [4, 4, 10], [0, 10], [3, 9]],
                         ids=["none", "repeated", "empty first", "short of the end"])
def test_frame_ends_that_do_not_cover_the_stream_are_refused(ends):
    with pytest.raises(ValueError, match="frame ends"):
        pack_beats(bytes(10), ends)


def test_a_historical_buffer_is_packed_in_frames_on_its_message_boundaries():
    # Arrange: generated ITCH in 2-byte length framing, its offsets found by hand
    from host.link.beats import frame_ends_on_messages, pack_historical
    from sim.gen.itchgen import generate

    stream = generate(3, 800)
    offsets, pos = [], 0
    while pos < len(stream):
        offsets.append(pos)
        pos += 2 + int.from_bytes(stream[pos:pos + 2], "big")
    ends = frame_ends_on_messages(np.asarray(offsets), len(stream), 512)

    # Act
    beats = pack_historical(stream, 512)

    # Assert
    assert len(ends) > 10
    assert _as_tuples(beats) == _reference(stream, ends)


def test_a_historical_buffer_cut_inside_a_message_is_refused():
    from host.feed.framing import FramingError
    from host.link.beats import pack_historical
    from sim.gen.itchgen import generate

    stream = generate(3, 50)
    with pytest.raises(FramingError):
        pack_historical(stream[:-3])
