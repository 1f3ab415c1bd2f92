"""Part B (notebooks 12-19): a UNet trained from scratch on MNIST, then flow matching.

In syllabus order: the building blocks of §1.1 (``blocks``), the three UNets built from them
(``unet``) and their drawing (``diagram``); the one-step denoiser's noising and loss of §1.2
(``noising``); flow matching's path, velocity and loss of §2 (``flow``); the one training loop
(``train``) and the handout's trainings sized by a run profile (``recipes``); Euler sampling with
classifier-free guidance of §2.3 and §2.5 (``sampling``); and the trained models judged, per
epoch, guidance scale or number of steps, and by their held-out loss (``evaluation``). The optional
extension of notebook 19: DDPM on the same UNets (``ddpm``), measured against flow matching and
sampled by Part A's loop (``compare``).
"""
