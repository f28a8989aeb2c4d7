"""core.libraries: peft is imported without bitsandbytes, and a 4-bit run can still let it in."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import panza_core
from panza_core import libraries
import peft
from peft.import_utils import is_bnb_4bit_available
assert sys.modules["bitsandbytes"] is None and sys.modules["kernels"] is None
assert not is_bnb_4bit_available()
libraries.allow_4bit()
assert sys.modules["bitsandbytes"] is not None and is_bnb_4bit_available()
assert sys.modules["kernels"] is None  # bitsandbytes fell back to its own CPU code
print("ok")
"""


def test_peft_loads_without_bitsandbytes_until_a_4bit_base_is_asked_for():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok" and done.stderr == ""  # no warning of theirs either
