"""validate, schema and the static stages never import torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from archspec.cli import main
code = main({argv!r})
assert "torch" not in sys.modules, "torch was imported"
sys.exit(code)
"""


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_validate_does_not_import_torch():
    proc = run(["validate", "specs/resnet50.yaml", "specs/osnet_x1_0.yaml", "specs/mobilenet_v2.yaml"])
    assert proc.returncode == 0, proc.stderr
    assert "resnet50, 25,557,032 params" in proc.stdout


def test_schema_does_not_import_torch():
    proc = run(["schema"])
    assert proc.returncode == 0, proc.stderr
    assert '"$schema"' in proc.stdout
