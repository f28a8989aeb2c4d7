"""The bottom layer: store, config, models, retrieval, llama.cpp and drafting.

Imports nothing above it (no ``sync``, ``training``, CLI or Textual); ``sync`` and
``training`` build on it, and the CLI and the app on all three.
"""

from panza_core import libraries as _libraries

# Before any ML library is imported: they decide then whether to load bitsandbytes and to
# fetch kernels from the Hugging Face Hub (see core.libraries).
_libraries.guard()
