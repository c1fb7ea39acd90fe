# ruff: noqa: F821  (lit injects `config`)
# lit configuration: `.tc` and `.tcir` files with RUN:/CHECK: lines, checked by filecheck.
import os
import shutil
import sys

import lit.formats

config.name = "tensorc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".tc", ".tcir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "Output"]

python = sys.executable
tensorc = shutil.which("tensorc")
config.substitutions.append(("%tensorc", f"{python} -m tensorc"))
config.substitutions.append(("%python", python))
if tensorc is None:
    # Not installed as a script: run the package with the interpreter that runs lit.
    config.substitutions.append(("tensorc ", f"{python} -m tensorc "))
for name in ("PATH", "PYTHONPATH", "HOME", "TENSORC_CACHE_DIR"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
