"""course_utils: the tested helpers behind the diffusion and flow-matching notebooks.

One module per idea: ``blocks`` and ``unet`` (the models), ``noising`` and ``flow`` (what is
learned), ``sampling`` (how samples are drawn), ``train`` and ``checkpoint`` (the loop and what
survives a dead session), ``data``, ``plotting``, ``profiles`` and ``env`` (the surroundings).
Part A (DeepFloyd IF): ``schedule`` (ᾱ_t, strided timesteps), ``noise_models`` (the ε-model
interface, IF's UNet, a tiny offline stand-in, an oracle), ``diffusion`` (forward process,
denoising, sampling, CFG), ``edits`` (SDEdit, inpainting, anagrams, hybrids), ``deepfloyd`` and
``backend`` (loading, prompt embeddings), ``images`` and ``drawing`` (inputs).
"""
__version__ = "0.1.0"
