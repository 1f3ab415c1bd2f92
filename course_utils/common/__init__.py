"""The machinery both parts share, none of it an algorithm the course teaches.

Where a notebook runs and what it writes where (``env``), the run profiles that size every
notebook (``profiles``), MNIST as tensors (``data``), checkpoints that survive a dead session
(``checkpoint``), figures (``plotting``), and sample quality as numbers: a small digit classifier
(``classifier``) and the class accuracy and Fréchet distance built on it (``metrics``). Nothing
here imports ``part_a`` or ``part_b``.
"""
