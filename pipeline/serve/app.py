"""The page (Gradio Blocks): pick a class, draw or reseed a latent, hear its bar looped, walk
from one latent to another, set the tempo, download what you hear as a tagged WAV."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from pipeline.export.pack import file_stem
from pipeline.grid import BarGrid
from pipeline.serve.render import render_bar, render_walk

MIN_BPM, MAX_BPM = 20.0, 400.0  # as bargan generate
MAX_WALK_BARS = 64
MAX_SEED = 2**31 - 1


def build_app(
    generator: torch.nn.Module,
    grid: BarGrid,
    class_names: list[str],
    title: str,
    workdir: Path,
) -> Any:
    """The Blocks app for one generator; rendered files go to ``workdir``."""
    import gradio as gr

    conditional = bool(getattr(generator, "num_classes", 0))

    def class_index(name: str | None) -> int | None:
        if not conditional:
            return None
        if name not in class_names:
            raise gr.Error(f"unknown class {name!r}; known: {', '.join(class_names)}")
        return class_names.index(name)

    def check(seed: float | None, bpm: float | None) -> tuple[int, float]:
        if seed is None or seed < 0 or seed > MAX_SEED or int(seed) != seed:
            raise gr.Error(f"seed {seed}: a whole number from 0 to {MAX_SEED}")
        if bpm is None or not MIN_BPM <= bpm <= MAX_BPM:
            raise gr.Error(f"tempo {bpm}: between {MIN_BPM:g} and {MAX_BPM:g} BPM")
        return int(seed), float(bpm)

    def bar(name: str | None, seed: float, bpm: float, progress=gr.Progress()):  # noqa: B008
        seed, bpm = check(seed, bpm)
        progress(0.1, desc="generating the bar")
        label = name if conditional else "bargan"
        out = workdir / f"{file_stem(label, bpm, 'bar', seed, 1)}.wav"
        with torch.no_grad():
            done = render_bar(generator, grid, seed, class_index(name), bpm, out)
        text = f"**{out.name}**: one bar at {bpm:g} BPM ({done.seconds:.2f} s), tagged to loop"
        return str(out), str(out), text

    def walk(name, seed_a, seed_b, bars, bpm, progress=gr.Progress()):  # noqa: B008
        seed_a, bpm = check(seed_a, bpm)
        seed_b, _ = check(seed_b, bpm)
        n = int(bars)
        if not 2 <= n <= MAX_WALK_BARS:
            raise gr.Error(f"walk of {bars} bars: 2 to {MAX_WALK_BARS}")
        label = name if conditional else "bargan"
        out = workdir / f"{file_stem(label, bpm, 'walk', seed_a, n)}-to-s{seed_b}.wav"

        def report(fraction: float, text: str) -> None:
            progress(fraction, desc=text)

        with torch.no_grad():
            done = render_walk(
                generator, grid, (seed_a, seed_b), class_index(name), n, bpm, out,
                progress=report,
            )  # fmt: skip
        text = f"**{out.name}**: {n} bars from seed {seed_a} to {seed_b} at {bpm:g} BPM"
        return str(out), str(out), text + f" ({done.seconds:.1f} s), tagged to loop"

    def reseed() -> int:
        return random.randrange(MAX_SEED)

    with gr.Blocks(title=f"bargan: {title}", analytics_enabled=False) as app:
        gr.Markdown(
            f"# bargan: {title}\n"
            f"{grid.sample_rate} Hz, {grid.bpm:g} BPM, {grid.beats_per_bar} beats per bar, "
            f"{grid.channels} channel(s); "
            + (f"classes: {', '.join(class_names)}" if conditional else "unconditional")
        )
        with gr.Row():
            choose = gr.Radio(
                class_names, value=class_names[0] if conditional else None, label="class",
                visible=conditional, elem_id="bargan-class",
            )  # fmt: skip
            bpm = gr.Number(grid.bpm, label="tempo (BPM)", minimum=MIN_BPM, maximum=MAX_BPM,
                            elem_id="bargan-bpm")  # fmt: skip
        with gr.Row():
            seed = gr.Number(0, precision=0, label="seed (latent A)", elem_id="bargan-seed")
            again = gr.Button("new seed", elem_id="bargan-reseed")
            make = gr.Button("Generate bar", variant="primary", elem_id="bargan-generate")
        with gr.Row():
            seed_b = gr.Number(1, precision=0, label="seed B (walk A → B)", elem_id="bargan-seed-b")
            bars = gr.Slider(2, MAX_WALK_BARS, value=8, step=1, label="bars in the walk",
                             elem_id="bargan-bars")  # fmt: skip
            go = gr.Button("Walk A → B", elem_id="bargan-walk")
        player = gr.Audio(type="filepath", loop=True, interactive=False, label="looped",
                          elem_id="bargan-player")  # fmt: skip
        download = gr.File(label="download (tagged WAV)", interactive=False,
                           elem_id="bargan-download")  # fmt: skip
        status = gr.Markdown(elem_id="bargan-status")
        again.click(reseed, outputs=seed)
        make.click(bar, inputs=[choose, seed, bpm], outputs=[player, download, status])
        go.click(walk, inputs=[choose, seed, seed_b, bars, bpm], outputs=[player, download, status])
    return app
