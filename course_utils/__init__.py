"""course_utils: the tested helpers behind the diffusion and flow-matching notebooks.

The tree follows the syllabus, one small module per idea. Imports only go one way: ``part_a``
may use ``part_b`` (its offline MNIST backend is Part B's model) and ``common``; ``part_b`` uses
only ``common``; ``common`` uses neither; ``checks`` sits on top of both parts.

part_a/         Part A, DeepFloyd IF and its MNIST stand-in (notebooks 00-11)
  backend         which model a notebook runs (deepfloyd, mnist, tiny) and each one's examples (§0)
  hub             whether IF can run here, and if not, the one real reason
  deepfloyd       loading IF's stages through diffusers; prompt embeddings computed once with T5
  memory_plan     each IF step's peak RAM and GPU memory on a free Colab T4, computed
  digits          the MNIST backend's digit prompts, digit images and examples
  pretrained      the committed MNIST model, and the recipe that trained it
  images          photos in and out as tensors in [-1, 1]
  schedule        IF's noise schedule ᾱ_t and the strided timesteps (§1.1, §1.4)
  noise_models    the ε-model interface every algorithm takes, and the models behind it
  diffusion       forward process, one-step and iterative denoising, sampling, CFG (§1.1-1.6)
  drawing         hand-drawn inputs (§1.7.1)
  edits           SDEdit, inpainting, visual anagrams, hybrid images (§1.7-1.9)
  illusions       how often the MNIST anagrams and hybrids work (§1.8, §1.9)
  lessons         every lesson measured on the MNIST backend, over many digits or seeds
part_b/         Part B, a UNet from scratch on MNIST (notebooks 12-18)
  blocks          the handout's building blocks (§1.1, Figure 2; FCBlock §2.1)
  unet            the unconditional, time- and class-conditioned UNets (§1.1, §2.1, §2.4)
  diagram         the UNet drawn from the model itself
  noising         the one-step denoiser's noising process and loss (§1.2)
  flow            the flow-matching path, its target velocity and loss (§2)
  train           one resumable training loop for the three trainings
  recipes         the handout's trainings, sized by a run profile
  sampling        Euler integration of the learned velocity, with CFG (§2.3, §2.5)
  evaluation      samples judged per epoch, γ or steps, and the held-out flow loss (§2.3-2.6)
common/         the machinery both parts share
  env             where the notebook runs: device, Colab, Drive, the folders it writes to
  profiles        the run profiles (smoke, cpu, full) that size every notebook
  data            MNIST as tensors on the device
  checkpoint      checkpoints that survive a dead session: atomic writes, checks, resume
  run_claim       one writer per run folder: a second session on the same run is stopped
  pixels          pixel-range checks where images enter ([-1, 1] in Part A, [0, 1] in Part B)
  progress        progress bars that TQDM_DISABLE silences
  quiet           silences the one known third-party import message
  plotting        image rows and grids, loss and quality curves, sampling GIFs
  classifier      the small digit classifier that judges samples
  metrics         class accuracy and the Fréchet distance next to its real-vs-real floor
solutions/      the model answers of the student edition's 22 exercises, written as a student
                writes them (the source of both editions' exercise cells)
checks/         the offline checks of those exercises: they pin the math, not the plumbing
assets/         committed files: the MNIST model, the classifiers, held-out digits, IF's configs
"""
from pathlib import Path

from .common import quiet as _quiet

_quiet.install()   # before diffusers imports bitsandbytes: see common/quiet.py
__version__ = "0.1.0"
ASSETS = Path(__file__).resolve().parent / "assets"   # see assets/README.md
