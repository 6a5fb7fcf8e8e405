"""An independent reader of a WAV file's chunks, written from the RIFF, ACID and sampler chunk
layouts (not from pipeline.export.riff): what a DAW would read from an exported loop."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass
class WavTags:
    chunk_ids: list[str]
    sample_rate: int
    channels: int
    bits: int
    frames: int
    acid: dict | None
    smpl: dict | None


def read_wav_tags(path: Path | str) -> WavTags:
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", f"{path}: not RIFF/WAVE"
    riff_size = int.from_bytes(data[4:8], "little")
    assert riff_size == len(data) - 8, f"{path}: RIFF size {riff_size}, file {len(data)} bytes"
    chunks: dict[str, bytes] = {}
    ids = []
    offset = 12
    while offset < len(data):
        cid = data[offset : offset + 4].decode("ascii")
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        chunks[cid] = data[offset + 8 : offset + 8 + size]
        ids.append(cid)
        offset += 8 + size + (size & 1)
    assert offset == len(data), f"{path}: chunks do not end at the end of the file"
    fmt = chunks["fmt "]
    _tag, channels, rate, _bps, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    frames = len(chunks["data"]) // align
    acid = smpl = None
    if "acid" in chunks:
        raw = chunks["acid"]
        assert len(raw) == 24, f"acid chunk of {len(raw)} bytes"
        flags, root, _u1, _u2, beats, denominator, numerator, tempo = struct.unpack(
            "<IHHfIHHf", raw
        )
        acid = {
            "one_shot": bool(flags & 0x01), "root_note_set": bool(flags & 0x02),
            "stretch": bool(flags & 0x04), "root_note": root, "beats": beats,
            "meter": (numerator, denominator), "tempo": tempo,
        }  # fmt: skip
    if "smpl" in chunks:
        raw = chunks["smpl"]
        header = struct.unpack("<9I", raw[:36])
        n_loops = header[7]
        assert len(raw) == 36 + 24 * n_loops + header[8], f"smpl chunk of {len(raw)} bytes"
        loops = [
            dict(zip(("cue", "type", "start", "end", "fraction", "count"),
                     struct.unpack("<6I", raw[36 + 24 * i : 60 + 24 * i]), strict=True))
            for i in range(n_loops)
        ]  # fmt: skip
        smpl = {"period_ns": header[2], "unity_note": header[3], "loops": loops}
    return WavTags(ids, rate, channels, bits, frames, acid, smpl)
