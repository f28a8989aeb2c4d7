"""What the third-party ML libraries may do in a user's run: no Hub lookups Panza did not ask
for, no bitsandbytes unless a 4-bit base is asked for, no warnings or progress bars of theirs.

``guard`` runs when ``panza_core`` is imported, before any of those libraries is: they
decide at import time whether to load bitsandbytes (peft imports it whenever it is
installed) and bitsandbytes decides then whether to fetch its CPU kernel from the Hub (the
``kernels`` package, on CPUs with AVX512-BF16). A model the user names is still downloaded
(``core.hub`` uses huggingface_hub itself, not ``kernels``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

# Hub kernels (the ``kernels`` package): fetched from the Hugging Face Hub at import time by
# bitsandbytes on some CPUs and on request by transformers; Panza never asks for one.
HUB_KERNELS = "kernels"
BITSANDBYTES = "bitsandbytes"


def guard() -> None:
    """Block the ``kernels`` package for good and ``bitsandbytes`` until ``allow_4bit``.

    A module mapped to None in ``sys.modules`` cannot be imported and is not found by
    ``importlib.util.find_spec``, which is how peft, transformers and accelerate ask
    whether it is installed. Idempotent; a module already imported stays as it is. Also
    sets ``USE_HUB_KERNELS=NO`` for this process and its children: transformers (5.x)
    otherwise asks to kernelize every model it loads with kernels from the Hub.
    """
    os.environ["USE_HUB_KERNELS"] = "NO"
    # None in sys.modules is the import system's own mark for "not importable"; typeshed
    # types the mapping as modules only.
    sys.modules.setdefault(HUB_KERNELS, None)  # type: ignore[arg-type]
    sys.modules.setdefault(BITSANDBYTES, None)  # type: ignore[arg-type]
    # Without Hub kernels bitsandbytes falls back to its own CPU code and logs a warning
    # that asks the user to install them: not theirs to act on.
    logging.getLogger(BITSANDBYTES).setLevel(logging.ERROR)


def allow_4bit() -> None:
    """Let bitsandbytes load (``quantize = "nf4"``) and import it; peft, imported earlier
    with it blocked, is told it is there now.

    Raises ImportError (not installed) or RuntimeError (its native library fails to load).
    """
    if BITSANDBYTES in sys.modules and sys.modules[BITSANDBYTES] is None:
        del sys.modules[BITSANDBYTES]
    importlib.import_module(BITSANDBYTES)
    peft_imports = sys.modules.get("peft.import_utils")
    if peft_imports is not None:  # peft caches "not installed" per process
        for name in ("is_bnb_available", "is_bnb_4bit_available"):
            check = getattr(peft_imports, name, None)
            if check is not None and hasattr(check, "cache_clear"):
                check.cache_clear()


def quiet_transformers() -> None:
    """Silence transformers' notices about its own internals and its progress bars,
    including the one its GGUF loader draws with plain tqdm (which transformers' own
    ``disable_progress_bar`` does not reach). Panza shows its own progress; those lines would
    only bury it. Imports transformers.
    """
    import functools
    import warnings

    from transformers import modeling_gguf_pytorch_utils as gguf_loader
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    bar = getattr(gguf_loader, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        gguf_loader.tqdm = functools.partial(bar, disable=True)
