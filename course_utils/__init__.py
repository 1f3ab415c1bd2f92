"""course_utils: the tested helpers behind the diffusion and flow-matching notebooks.

One module per idea: ``blocks`` and ``unet`` (the models), ``noising`` and ``flow`` (what is
learned), ``sampling`` (how samples are drawn), ``train`` and ``checkpoint`` (the loop and what
survives a dead session), ``data``, ``plotting``, ``profiles`` and ``env`` (the surroundings).
"""
__version__ = "0.1.0"
