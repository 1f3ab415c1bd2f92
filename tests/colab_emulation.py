"""Runs INSIDE the emulated Colab venv (see test_emulated_colab.py), with only what the notebook's
install cell installed. Exits non-zero, with the reason, on any failure.

    python colab_emulation.py deepfloyd WORKDIR        the DeepFloyd path on tiny hub-shaped folders
    python colab_emulation.py notebook IN.ipynb OUT.ipynb KERNEL   a Part A notebook on "tiny"
    python colab_emulation.py imports                  importing the course prints nothing
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch


def deepfloyd_path(work: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_if_hub import build_stage_1, build_stage_2

    import course_utils
    from course_utils.part_a import backend, deepfloyd, diffusion, hub

    assert course_utils.__file__.startswith(sys.prefix), f"course_utils from {course_utils.__file__}, not the venv"
    assert hub.missing_packages(text_encoder=True) == [], hub.missing_packages(text_encoder=True)
    stage_1, stage_2 = build_stage_1(work / "IF-I"), build_stage_2(work / "IF-II")
    path = work / "embeddings" / deepfloyd.EMBEDDINGS_FILE
    prompts = ["", "a photo of a dog", "a rocket ship"]

    # Section 0: T5 through the real loading code (tokenizer from spiece.model: needs protobuf)
    table = deepfloyd.compute_prompt_embeddings(prompts, path, "cpu", repo=str(stage_1))
    assert path.stat().st_size > 0 and set(table.prompts()) == set(prompts)
    dog, null = table["a photo of a dog"], table[""]
    assert dog.shape == null.shape == (1, 77, 4096) and torch.isfinite(dog).all()
    assert not torch.equal(dog, null), "the prompt and the null prompt got the same embedding"
    again = deepfloyd.compute_prompt_embeddings(prompts, path, "cpu", repo="no/such-repo")  # nothing to do
    assert torch.equal(again["a photo of a dog"], dog), "a stored embedding was recomputed"

    # Stage I as the notebooks load it, then its own sampler with CFG, then stage II
    b = backend.deepfloyd_backend("cpu", path, repos=(str(stage_1), str(stage_2)))
    assert b.name == "deepfloyd" and b.stage_1.tokenizer is None and b.stage_1.text_encoder is None
    images = b.generate("a photo of a dog", 3, torch.Generator().manual_seed(0), n=2, guidance_scale=7.0)
    assert images.shape == (2, 3, 64, 64) and torch.isfinite(images).all()
    same = b.generate("a photo of a dog", 3, torch.Generator().manual_seed(0), n=2, guidance_scale=7.0)
    assert torch.equal(images, same), "stage I is not reproducible with a fixed generator"
    up = b.upsample(images[:1], "a photo of a dog", torch.Generator().manual_seed(0), num_inference_steps=2)
    assert up.shape == (1, 3, 256, 256) and torch.isfinite(up).all()
    assert b._stage_2.tokenizer is None

    # The course's own CFG loop on the loaded UNet
    cond, uncond = b.embed("a photo of a dog"), b.embed("")
    x = diffusion.sample(b.model, cond, 1, uncond, 7.0, [990, 660, 330, 0], torch.Generator().manual_seed(0))
    assert x.shape == (1, 3, 64, 64) and torch.isfinite(x).all()
    print(f"deepfloyd path ok: {len(table)} embeddings, stage I {tuple(images.shape)}, "
          f"stage II {tuple(up.shape)}, CFG loop {tuple(x.shape)}")


def clean_imports() -> None:
    """Importing the course prints nothing; the bitsandbytes message it silences is dropped even
    on a CPU without AVX-512 bf16 (where bitsandbytes would not log it in the first place)."""
    import logging

    import course_utils.part_a.backend  # noqa: F401  (diffusers, and with it bitsandbytes)
    import course_utils.part_a.edits  # noqa: F401
    import course_utils.part_b.recipes  # noqa: F401
    from course_utils.common import quiet

    logging.getLogger(quiet.BNB_CPU_LOGGER).warning(
        "Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "No module named 'kernels'")
    print("imports ok")


def notebook(src: Path, out: Path, kernel: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(src, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell('PROFILE = "smoke"\nBACKEND = "tiny"'))
    NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(src.parent)}}).execute()
    nbformat.write(nb, out)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "backend 'tiny'" in text, "the notebook did not run on the tiny backend"
    # Clean output (issue 20): not a line on stderr, e.g. bitsandbytes' "Failed to load CPU
    # gemm_4bit_forward from kernels-community" that importing diffusers printed on a CPU runtime.
    stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
    assert not stderr, f"{src.name} printed on stderr:\n{stderr[-3000:]}"
    print(f"{src.name} ran on the tiny backend")


if __name__ == "__main__":
    if sys.argv[1] == "deepfloyd":
        deepfloyd_path(Path(sys.argv[2]))
    elif sys.argv[1] == "imports":
        clean_imports()
    else:
        notebook(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
