"""The CLI starts without torch: no command trains in the CLI's process (training runs in
the nodes' ClientApp processes), and pricing DP-SGD releases needs only Opacus' RDP
analysis, loaded on its own (`vocab.accounting._opacus_rdp`)."""

from __future__ import annotations

import json
import subprocess
import sys

from vocab.accounting import epsilon_spent
from vocab.privacy import DpSgdEvent

_EVENT = (1.1, 0.01, 600)  # noise multiplier, sample rate, steps


def test_the_cli_and_its_pricing_import_no_torch() -> None:
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from silobridge.cli.main import app\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "CliRunner().invoke(app, ['job', 'submit', '--help'])\n"
        "from vocab.accounting import epsilon_spent\n"
        "from vocab.privacy import DpSgdEvent\n"
        f"eps = epsilon_spent([DpSgdEvent(*{_EVENT!r})], 1e-5)\n"
        "heavy = sorted(m for m in ('torch', 'opacus') if m in sys.modules)\n"
        "print(json.dumps({'eps': eps, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["heavy"] == [], f"loaded at start-up: {seen['heavy']}"
    # The same curve as through Opacus' package (imported the usual way in this process).
    import opacus.accountants.analysis.rdp  # noqa: F401

    assert seen["eps"] == epsilon_spent([DpSgdEvent(*_EVENT)], 1e-5)
