"""`ListNodes`' app versions: learned from the coordinator's own audit log - the bundle each
job ran in (its `job_received` entry) and how each department's node answered it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.exchange import AnswerStatus, NodeReply
from server.home.coordinator_home import CoordinatorHome
from server.run_config import RunMode
from server.service.job_service import JobService
from server.service.service_config import ServiceConfig
from server.service.sql_job_store import open_job_store
from testkit.synthetic import synthetic_spec
from vocab.identity_key import IdentityKey

OLD, NEW, ROGUE = "a" * 64, "b" * 64, "c" * 64


def _reply(department: str, status: AnswerStatus, code: str = "") -> NodeReply:
    return NodeReply(1, department, 0, "query", status, code)


def test_nodes_list_the_apps_each_department_ran_and_refused(tmp_path: Path) -> None:
    home = CoordinatorHome(tmp_path / "home")
    home.root.mkdir()
    for department in ("health", "tax", "transport"):
        pem = IdentityKey(Ed25519PrivateKey.generate()).public.pem()
        home.nodes.register(department, pem)
    audit = home.audit()
    spec = synthetic_spec("j")
    for job_id, app in (("j-old", OLD), ("j-new", NEW), ("j-rogue", ROGUE)):
        audit.job_received(spec, job_id, RunMode.QUOTE, app)
    audit.job_received(spec, "j-unknown", RunMode.QUOTE)  # a job whose bundle is not known
    audit.node_reply("j-old", _reply("health", AnswerStatus.OK))
    audit.node_reply("j-new", _reply("health", AnswerStatus.REFUSED, "budget_exceeded"))
    audit.node_reply("j-rogue", _reply("health", AnswerStatus.REFUSED, "app_not_approved"))
    audit.node_reply("j-new", _reply("tax", AnswerStatus.NO_ANSWER, "no_reply"))
    audit.node_reply("j-unknown", _reply("tax", AnswerStatus.OK))
    config = ServiceConfig(listen="127.0.0.1:0", home=home.root, store="x", tls=None)
    service = JobService(open_job_store(str(tmp_path / "jobs.db")), config, home, tmp_path)
    nodes = {n.department: n for n in service.nodes()}
    # A refusal for any reason but the app's means the node ran the bundle: it is approved.
    assert nodes["health"].approved_apps == (NEW, OLD)
    assert nodes["health"].refused_apps == (ROGUE,)
    # Silence says nothing about the app; a job without a recorded bundle neither.
    assert (nodes["tax"].approved_apps, nodes["tax"].refused_apps) == ((), ())
    assert nodes["tax"].status == "seen"
    assert nodes["transport"].status == "registered" and nodes["transport"].approved_apps == ()
