"""Imported first by every test module of LAD inside TRL: it skips that module, with the reason,
where TRL is not installed (`pip install -r requirements-trl.txt`; CI installs it), and fails it
where TRL is there but something TRL needs is not. Nothing in those tests needs the Hugging Face
hub, so the hub is switched off before anything imports it."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # huggingface_hub reads this when first imported
try:
    import trl  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "trl":
        raise  # TRL is there but something it needs is not: a failure, not a skip
    pytest.skip("TRL is not installed: pip install -r requirements-trl.txt",
                allow_module_level=True)
