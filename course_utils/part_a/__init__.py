"""Part A (notebooks 00-11): DeepFloyd IF's algorithms, run on IF or on its MNIST stand-in.

In syllabus order: choosing and loading the model of section 0 (``backend``, ``hub``,
``deepfloyd``, ``memory_plan``; for the offline MNIST backend ``digits`` and ``pretrained``) and
its inputs (``images``); the noise schedule (``schedule``) and the one ε-model interface every
algorithm is written against (``noise_models``); the forward process, denoising, sampling and
classifier-free guidance of §1.1-1.6 (``diffusion``); hand-drawn inputs (``drawing``) and the
edits of §1.7-1.9, SDEdit, inpainting, visual anagrams and hybrids (``edits``), with the success
rates of the MNIST illusions (``illusions``); and every lesson measured on the MNIST backend over
many digits or seeds (``lessons``).
"""
