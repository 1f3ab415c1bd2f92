"""Silence the one third-party message that importing the course printed on stderr.

bitsandbytes (installed with ``course-utils[deepfloyd]`` for 8-bit T5 on a GPU) is imported by
diffusers whenever it is installed, also on a CPU runtime where the course never uses it. On a CPU
with AVX-512 bf16 it then logs "Failed to load CPU gemm_4bit_forward from kernels-community: No
module named 'kernels' ..." (the optional Hub kernel for 4-bit matmuls on CPU, which the course
never runs): every Part A notebook would open with it on stderr. A filter on that logger drops
exactly this record; every other bitsandbytes message still gets through.
"""
from __future__ import annotations

import logging

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
_DROPPED = ("Failed to load CPU gemm_4bit_forward from kernels-community",)


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_DROPPED)


def install() -> None:
    """Idempotent; must run before bitsandbytes is first imported (``course_utils`` does it)."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    if not any(isinstance(f, _DropKnownNoise) for f in logger.filters):
        logger.addFilter(_DropKnownNoise())
