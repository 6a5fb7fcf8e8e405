"""The RIFF chunks a DAW reads from a loop's WAV file, and adding them to a WAV file's bytes.

* ``acid`` (24 bytes, Sony ACID): flags (u32: 0x01 one-shot, 0x02 root note set, 0x04 stretch,
  0x08 disk-based, 0x10 ACIDizer), root note (u16), two fields of unknown use (u16, f32),
  number of beats (u32), meter denominator (u16), meter numerator (u16), tempo in BPM (f32).
  A loop is written with the stretch flag and without a root note: a host fits it to the
  project's tempo and does not transpose it.
* ``smpl`` (36-byte header + 24 bytes per loop, the MIDI sampler chunk): manufacturer, product,
  sample period in ns (``1e9 / rate``), MIDI unity note, pitch fraction, SMPTE format and
  offset, number of loops, sampler data; then per loop: cue point id, type (0 = forward), start
  and end in samples (the end sample is played: inclusive), fraction, play count (0 = forever).

All fields are little-endian. Chunks with an odd size are followed by one pad byte.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

ACID_ONE_SHOT = 0x01
ACID_ROOT_NOTE_SET = 0x02
ACID_STRETCH = 0x04
ACID_DISK_BASED = 0x08
ACID_ACIDIZER = 0x10
ACID_UNKNOWN_U16 = 0x8000  # the value ACID itself writes in the first field of unknown use
MIDI_UNITY_NOTE = 60  # middle C: play the loop at its own pitch
SMPL_FORWARD_LOOP = 0
_ACID = struct.Struct("<IHHfIHHf")
_SMPL_HEADER = struct.Struct("<9I")
_SMPL_LOOP = struct.Struct("<6I")


@dataclass(frozen=True)
class LoopTags:
    """What the tags of one file say: tempo, beats (and beats per bar), one loop point pair
    (``loop_end`` inclusive), at ``sample_rate``."""

    bpm: float
    beats: int
    beats_per_bar: int
    sample_rate: int
    loop_start: int
    loop_end: int
    one_shot: bool = False

    def __post_init__(self) -> None:
        if not self.bpm > 0:
            raise ValueError(f"tempo must be > 0 BPM, got {self.bpm}")
        if self.beats < 1 or self.beats_per_bar < 1:
            raise ValueError(
                f"need beats >= 1 and beats per bar >= 1, got {self.beats}, {self.beats_per_bar}"
            )
        if not 0 <= self.loop_start <= self.loop_end:
            raise ValueError(f"loop [{self.loop_start}, {self.loop_end}] is empty or negative")


def whole_bar_loop(
    frames: int, bars: int, sample_rate: int, bpm: float, beats_per_bar: int
) -> LoopTags:
    """Tags of a file that is ``bars`` whole bars of ``frames`` samples: one forward loop over
    all of it (samples ``0`` to ``frames - 1``), ``bars * beats_per_bar`` beats at ``bpm``."""
    if bars < 1 or frames < bars:
        raise ValueError(f"{frames} samples cannot hold {bars} bar(s)")
    return LoopTags(float(bpm), bars * beats_per_bar, beats_per_bar, sample_rate, 0, frames - 1)


def chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: id, size, payload, and a pad byte when the size is odd."""
    if len(chunk_id) != 4:
        raise ValueError(f"a chunk id is 4 bytes, got {chunk_id!r}")
    pad = b"\0" if len(payload) % 2 else b""
    return chunk_id + struct.pack("<I", len(payload)) + payload + pad


def acid_chunk(tags: LoopTags) -> bytes:
    flags = ACID_ONE_SHOT if tags.one_shot else ACID_STRETCH
    payload = _ACID.pack(
        flags, 0, ACID_UNKNOWN_U16, 0.0, tags.beats, 4, tags.beats_per_bar, tags.bpm
    )
    return chunk(b"acid", payload)


def smpl_chunk(tags: LoopTags) -> bytes:
    period_ns = round(1e9 / tags.sample_rate)
    header = _SMPL_HEADER.pack(0, 0, period_ns, MIDI_UNITY_NOTE, 0, 0, 0, 1, 0)
    loop = _SMPL_LOOP.pack(0, SMPL_FORWARD_LOOP, tags.loop_start, tags.loop_end, 0, 0)
    return chunk(b"smpl", header + loop)


def loop_chunks(tags: LoopTags) -> list[bytes]:
    """The ``acid`` and ``smpl`` chunks of ``tags``."""
    return [acid_chunk(tags), smpl_chunk(tags)]


def add_chunks(wav: bytes, chunks: Sequence[bytes]) -> bytes:
    """``wav`` (a RIFF/WAVE file's bytes) with ``chunks`` appended after its own, replacing any
    chunk of the same id; the RIFF size is rewritten. Raises ValueError for a non-WAV."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    replaced = {c[:4] for c in chunks}
    kept, offset = [], 12
    while offset + 8 <= len(wav):
        chunk_id = wav[offset : offset + 4]
        (size,) = struct.unpack_from("<I", wav, offset + 4)
        end = offset + 8 + size
        if end > len(wav):
            raise ValueError(f"chunk {chunk_id!r} runs past the end of the file")
        if chunk_id not in replaced:
            kept.append(chunk(chunk_id, wav[offset + 8 : end]))
        offset = end + size % 2
    body = b"WAVE" + b"".join(kept) + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
