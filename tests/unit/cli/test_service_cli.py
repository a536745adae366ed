"""The analyst's and officer's commands over the coordinator service's API.

Against a real service on loopback with real mutual-TLS credentials (the service tests'
`deployment` fixture): submit and watch a job, list, watch from a seq, fetch, status,
cancel someone else's job, the central caps, the audit log, and the errors a person meets
(wrong role, nothing listening, no client config). The watch's reconnects and the result
download's name checks run against a stand-in stub, where a service restart can be staged
exactly.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from protos.silobridge.v1 import coordinator_pb2 as pb
from silobridge.certs import issue_client_cert, make_deployment_certs
from silobridge.cli.errors import EXIT_JOB_FAILED
from silobridge.cli.main import app
from silobridge.service_client import (
    ClientConfig,
    ServiceClient,
    ServiceProtocolError,
    ServiceUnavailable,
    load_client_config,
)
from testkit.inprocess_runner import InProcessRunner
from tests.unit.server.service.conftest import (
    ANALYST,
    OFFICER,
    OPERATOR,
    OTHER_ANALYST,
    Deployment,
    deployment,
    make_deployment,
)
from vocab.errors import SilobridgeError
from vocab.jobs.loader import load_spec
from vocab.progress import JobEnd, NodesConnected, ProgressEvent

__all__ = ["deployment", "make_deployment"]  # the service tests' fixtures, used here

runner = CliRunner()

SPEC = """\
[job]
kind = "statistics"
name = "counts"
epsilon = 1.0
delta = 1e-6
min_nodes = 2
node_wait_s = 1.0
analyst = "someone.else"
project = "not-granted"

[[statistics]]
measure = "count"
"""


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Exit code, stdout, and stdout with stderr; never a traceback."""
    result = runner.invoke(app, list(args), env=env)
    both = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), both
    assert "Traceback" not in both
    return result.exit_code, result.stdout, both


def _client_config(deployment: Deployment, role: str, name: str, folder: Path) -> Path:
    """A client TOML with relative paths, as a person would keep it beside their files."""
    cert, key = deployment.credentials(role, name)
    folder.mkdir(parents=True, exist_ok=True)
    for src in (cert, key, deployment.certs.ca_cert):
        (folder / src.name).write_bytes(src.read_bytes())
    path = folder / "client.toml"
    path.write_text(
        f'[client]\naddress = "{deployment.address}"\ncert = "{cert.name}"\n'
        f'key = "{key.name}"\nca = "{deployment.certs.ca_cert.name}"\n'
    )
    return path


def test_an_analyst_runs_a_job_through_the_service(deployment: Deployment, tmp_path: Path) -> None:
    mine = _client_config(deployment, "analyst", ANALYST, tmp_path / "me")
    config = load_client_config(mine)
    assert config.cert.is_file() and config.address == deployment.address
    spec = tmp_path / "counts.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"

    code, stdout, both = _invoke(
        "job", "submit", str(spec), "--out", str(out), "--client-config", str(mine)
    )
    assert code == 0, both
    listed = json.loads(_invoke("job", "list", "--json", "--client-config", str(mine))[1])["jobs"]
    assert len(listed) == 1
    job = listed[0]
    assert job["analyst"] == ANALYST and job["project"] == "credit"  # not the spec's
    assert job["state"] == "succeeded" and job["job_id"] in stdout
    assert (out / "result.json").is_file()
    assert json.loads((out / "result.json").read_text())["status"] == "succeeded"
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]

    code, stdout, both = _invoke(
        "job", "watch", job["job_id"], "--json", "--after", "2", "--client-config", str(mine)
    )
    assert code == 0, both
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(3, job["last_seq"] + 1))
    assert lines[-1]["kind"] == JobEnd.kind and lines[-1]["event"]["status"] == "succeeded"

    fetched = tmp_path / "fetched"
    code, _, both = _invoke(
        "job", "result", job["job_id"], "--out", str(fetched), "--client-config", str(mine)
    )
    assert code == 0, both
    assert (fetched / "result.json").read_bytes() == (out / "result.json").read_bytes()

    code, stdout, _ = _invoke("job", "status", job["job_id"], "--json", "--client-config",
                              str(mine))  # fmt: skip
    assert code == 0 and json.loads(stdout)["state"] == "succeeded"

    # The whole config can come from flags.
    cert, key = deployment.credentials("analyst", ANALYST)
    code, stdout, both = _invoke(
        "whoami", "--json", "--service", deployment.address, "--cert", str(cert),
        "--key", str(key), "--ca", str(deployment.certs.ca_cert),
        "--client-config", str(tmp_path / "absent.toml"),
    )  # fmt: skip
    assert code != 0 and "absent.toml" in both  # a named file must exist...
    code, stdout, both = _invoke(
        "whoami", "--json", "--service", deployment.address, "--cert", str(cert),
        "--key", str(key), "--ca", str(deployment.certs.ca_cert),
        env={"HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert code == 0, both  # ...the default one need not
    assert json.loads(stdout) == {
        "name": ANALYST, "role": "analyst", "projects": ["credit"],
        "service": deployment.address,
    }  # fmt: skip

    # Another analyst's job is not found, and says nothing about it.
    other = _client_config(deployment, "analyst", OTHER_ANALYST, tmp_path / "other")
    code, _, both = _invoke("job", "cancel", job["job_id"], "--client-config", str(other))
    assert code != 0
    assert "NOT_FOUND" in both and "not found" in both.lower()

    # The officer sets a central cap and reads it back, and verifies the audit log.
    officer = _client_config(deployment, "officer", OFFICER, tmp_path / "officer")
    code, _, both = _invoke(
        "budget", "central", "set", "--kind", "analyst", "--key", ANALYST, "--epsilon", "5",
        "--client-config", str(officer),
    )  # fmt: skip
    assert code == 0 and "5.0000" in both, both
    code, stdout, _ = _invoke("budget", "central", "show", "--json", "--client-config",
                              str(officer))  # fmt: skip
    standings = json.loads(stdout)["standings"]
    capped = [s for s in standings if (s["kind"], s["key"]) == ("analyst", ANALYST)]
    assert code == 0 and capped and capped[0]["cap"] == 5.0
    assert capped[0]["spent"] > 0  # the job above was charged against it
    code, stdout, both = _invoke("audit", "coordinator", "verify", "--client-config",
                                 str(officer))  # fmt: skip
    assert code == 0 and "ok" in stdout, both
    exported = tmp_path / "audit.jsonl"
    code, _, both = _invoke("audit", "coordinator", "export", str(exported), "--client-config",
                            str(officer))  # fmt: skip
    assert code == 0, both
    entries = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    code, stdout, _ = _invoke("job", "list", "--json", "--analyst", ANALYST, "--client-config",
                              str(officer))  # fmt: skip
    assert [j["job_id"] for j in json.loads(stdout)["jobs"]] == [job["job_id"]]

    # An analyst may not read the audit log: a clear refusal, no traceback.
    code, _, both = _invoke("audit", "coordinator", "verify", "--client-config", str(mine))
    assert code != 0
    assert "PERMISSION_DENIED" in both and "your role may not do this" in both

    # The operator lists the departments: both answered the job above.
    ops = _client_config(deployment, "operator", OPERATOR, tmp_path / "ops")
    code, stdout, both = _invoke("node", "list", "--json", "--client-config", str(ops))
    assert code == 0, both
    nodes = {n["department"]: n for n in json.loads(stdout)["nodes"]}
    assert set(nodes) == set(deployment.federation.nodes)
    assert all(n["status"] == "seen" and n["last_seen"] > 0 for n in nodes.values())
    code, stdout, both = _invoke("node", "list", "--client-config", str(ops))
    assert code == 0 and "registered departments" in stdout, both
    code, _, both = _invoke("node", "list", "--client-config", str(mine))
    assert code != 0 and "PERMISSION_DENIED" in both


def test_a_quote_a_failing_job_and_no_watch(deployment: Deployment, tmp_path: Path) -> None:
    mine = _client_config(deployment, "analyst", ANALYST, tmp_path / "me")
    spec = tmp_path / "counts.toml"
    spec.write_text(SPEC)
    code, stdout, both = _invoke(
        "job", "submit", str(spec), "--quote", "--json", "--client-config", str(mine)
    )
    assert code == 0, both
    doc = json.loads(stdout)
    assert doc["job"]["mode"] == "quote" and doc["quote"]["ok"] is True
    # More nodes than the federation has: the job fails, and so does the command.
    failing = tmp_path / "too-many.toml"
    failing.write_text(SPEC.replace("min_nodes = 2", "min_nodes = 3"))
    code, _, both = _invoke(
        "job", "submit", str(failing), "--out", str(tmp_path / "o"), "--client-config", str(mine)
    )
    assert code == EXIT_JOB_FAILED, both
    assert "failed" in both
    code, _, both = _invoke("job", "submit", str(spec), "--no-watch", "--client-config", str(mine))
    assert code == 0 and "job watch" in both


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nothing_listening_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    certs = make_deployment_certs(tmp_path / "certs")
    files = issue_client_cert(certs.folder, tmp_path / "me", role="analyst", name=ANALYST)
    address = f"127.0.0.1:{_free_port()}"
    code, _, both = _invoke(
        "job", "list", "--service", address, "--cert", str(files.cert), "--key",
        str(files.key), "--ca", str(certs.ca_cert),
    )  # fmt: skip
    assert code != 0
    assert "UNAVAILABLE" in both and f"is the service at {address} running" in both
    # A flag overrides the file's value.
    config = tmp_path / "client.toml"
    config.write_text(
        f'[client]\naddress = "127.0.0.1:1"\ncert = "{files.cert}"\nkey = "{files.key}"\n'
        f'ca = "{certs.ca_cert}"\n'
    )
    code, _, both = _invoke("whoami", "--client-config", str(config), "--service", address)
    assert code != 0 and f"is the service at {address} running" in both


def test_no_client_config_is_a_clear_error(tmp_path: Path) -> None:
    code, _, both = _invoke(
        "job", "list", env={"HOME": str(tmp_path), "SILOBRIDGE_CLIENT_CONFIG": ""}
    )
    assert code != 0
    assert "no client config" in both and "client.toml" in both and "--service" in both
    code, _, both = _invoke("whoami", "--client-config", str(tmp_path / "nope.toml"))
    assert code != 0 and "nope.toml" in both and "not found" in both
    broken = tmp_path / "broken.toml"
    broken.write_text('[client]\naddress = "no-port"\n')
    code, _, both = _invoke("whoami", "--client-config", str(broken))
    assert code != 0 and "cert, key, ca" in both


class _Killed(BaseException):
    """The old service's worker dies here (not an Exception: nothing catches it)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_watch_survives_a_restart_of_the_service(
    make_deployment: Callable[..., Deployment], tmp_path: Path
) -> None:
    # The same port after the restart, as a deployment's service keeps its address.
    deployment = make_deployment(listen=f"127.0.0.1:{_free_port()}")
    stuck, release = threading.Event(), threading.Event()

    def hang_once_connected(event: ProgressEvent) -> None:
        if isinstance(event, NodesConnected):
            stuck.set()
            release.wait()  # the old process is "dead": nothing more happens in it
            raise _Killed

    deployment.runner.before_event = hang_once_connected
    spec = tmp_path / "counts.toml"
    spec.write_text(SPEC)
    config = load_client_config(_client_config(deployment, "analyst", ANALYST, tmp_path / "me"))
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    with ServiceClient(config, backoff_s=0.2) as client:
        job = client.submit(load_spec(spec))

        def follow() -> None:
            try:
                seen.extend((seq, kind) for seq, _, kind in client.watch(job.job_id))
            except Exception as err:  # reported by the assertion below
                errors.append(err)

        watcher = threading.Thread(target=follow)
        watcher.start()
        assert stuck.wait(60), "the job never connected its nodes"
        deployment.service.stop(grace_s=0.5)  # the worker is stuck: the job stays RUNNING
        try:
            deployment.restart(InProcessRunner(deployment.federation))
            watcher.join(60)
        finally:
            release.set()
        assert not watcher.is_alive() and errors == []
        final = client.get(job.job_id)
    seqs = [seq for seq, _ in seen]
    assert seqs == list(range(1, final.last_seq + 1))  # none lost, none repeated
    assert seen[-1][1] == JobEnd.kind and final.state.value == "succeeded"
    assert [kind for _, kind in seen].count("job_start") == 2  # it ran again after the restart


# --- the client's watch and download against a stand-in stub -------------------------------


class _Broken(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__()
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "Socket closed"


class _Stream:
    """A server stream: yields the messages, then ends or breaks with `broken`."""

    def __init__(self, messages: list[Any], broken: grpc.StatusCode | None) -> None:
        self._messages, self._broken = messages, broken

    def __iter__(self) -> Iterator[Any]:
        yield from self._messages
        if self._broken is not None:
            raise _Broken(self._broken)

    def cancel(self) -> None:
        pass


def _event(seq: int, kind: str = "nodes_connected") -> Any:
    payload = {"connected": 2, "min_nodes": 2, "event": kind}
    return pb.JobEvent(job_id="j1", seq=seq, kind=kind, json=json.dumps(payload))


class _RestartingStub:
    """A service that drops the stream after seq 2 (a restart), then resends from seq 1 on
    reconnect if asked for it, then ends the job at seq 4."""

    def __init__(self, drops: int = 1, how: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.asked: list[int] = []
        self.drops, self.how = drops, how

    def GetJob(self, request: Any, timeout: float) -> Any:  # noqa: N802 (the RPC's name)
        done = len(self.asked) > self.drops
        return pb.JobInfo(job_id="j1", state=pb.JOB_STATE_SUCCEEDED if done else
                          pb.JOB_STATE_RUNNING, last_seq=4 if done else 0)  # fmt: skip

    def WatchJob(self, request: Any) -> _Stream:  # noqa: N802 (the RPC's name)
        self.asked.append(request.after_seq)
        if len(self.asked) <= self.drops:
            return _Stream([_event(s) for s in range(request.after_seq + 1, 3)], self.how)
        # A careless service resending seq 2: the client must not repeat it.
        return _Stream([_event(s) for s in range(2, 5)], None)


def _client(tmp_path: Path, stub: Any, reconnects: int = 3) -> tuple[ServiceClient, list[float]]:
    certs = make_deployment_certs(tmp_path / "certs")
    files = issue_client_cert(certs.folder, tmp_path / "me", role="analyst", name=ANALYST)
    sleeps: list[float] = []
    config = ClientConfig(f"127.0.0.1:{_free_port()}", files.cert, files.key, certs.ca_cert)
    client = ServiceClient(config, reconnects=reconnects, sleep=sleeps.append)
    client._stub = stub
    return client, sleeps


# A stopping service ends its watches; one whose stop grace runs out cancels them.
@pytest.mark.parametrize("how", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
def test_watch_resumes_after_a_restart_without_losing_or_repeating(
    tmp_path: Path, how: grpc.StatusCode
) -> None:
    stub = _RestartingStub(how=how)
    client, sleeps = _client(tmp_path, stub)
    with client:
        seqs = [seq for seq, _, _ in client.watch("j1")]
    assert seqs == [1, 2, 3, 4]
    assert stub.asked == [0, 2] and sleeps == [0.5]


def test_watch_gives_up_after_its_reconnects(tmp_path: Path) -> None:
    stub = _RestartingStub(drops=99)
    client, sleeps = _client(tmp_path, stub, reconnects=3)
    with client, pytest.raises(ServiceUnavailable) as info:
        list(client.watch("j1"))
    assert "gave up after 3 reconnects" in info.value.message
    assert "--after 2" in info.value.hint
    assert sleeps == [0.5, 1.0, 2.0]


class _ResultStub:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def FetchResult(self, request: Any) -> list[Any]:  # noqa: N802 (the RPC's name)
        return [pb.ResultChunk(file=n, offset=0, data=b"{}", last=True) for n in self.names]


@pytest.mark.parametrize("name", ["../evil.json", "sub/x.json", "..", "a\\b"])
def test_a_result_file_name_with_a_path_is_refused(tmp_path: Path, name: str) -> None:
    client, _ = _client(tmp_path, _ResultStub(["result.json", name]))
    out = tmp_path / "out"
    with client, pytest.raises(ServiceProtocolError):
        client.fetch_result("j1", out)
    assert list(out.iterdir()) == []  # nothing written, no temporary file left
    assert not (tmp_path / "evil.json").exists()


def test_an_analyst_reads_the_columns_the_departments_offer(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    mine = _client_config(deployment, "analyst", ANALYST, tmp_path / "me")
    code, stdout, both = _invoke("job", "schema", "--json", "--client-config", str(mine))
    assert code == 0, both
    departments = json.loads(stdout)["departments"]
    assert {d["department"] for d in departments} == set(deployment.federation.nodes)
    assert all([c[0] for c in d["columns"]] == ["x1", "x2", "grp", "y"] for d in departments)
    code, stdout, both = _invoke("job", "schema", "--client-config", str(mine))
    assert code == 0 and "offered by all 2 answering department(s): grp, x1, x2, y" in stdout
    assert "secret" not in stdout and "pid" not in stdout


def test_job_init_drafts_a_spec_from_the_columns_all_departments_offer(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.exchange.JOIN_GRACE_S", 0.0)
    mine = _client_config(deployment, "analyst", ANALYST, tmp_path / "me")
    out = tmp_path / "spec.toml"
    code, stdout, both = _invoke("job", "init", "--target", "y", "--out", str(out),
                                 "--client-config", str(mine))  # fmt: skip
    assert code == 0 and "3 candidate feature(s)" in stdout, both
    text = out.read_text()
    assert "# [features.x1]" in text and '# categories = ["..."]' in text
    assert "secret" not in text and "pid" not in text
    # Commented out, the draft asks for a feature; filled in, it is a spec the service takes.
    with pytest.raises(SilobridgeError, match="no features"):
        load_spec(out)
    out.write_text(text.replace("# [features.x1]", "[features.x1]").replace(
        "# lower = ...            # the column's public range\n# upper = ...",
        "lower = -4.0\nupper = 4.0", 1,
    ))  # fmt: skip
    spec = load_spec(out)
    assert [f.column for f in spec.features] == ["x1"] and spec.min_nodes == 2
    code, _, both = _invoke("job", "init", "--target", "secret", "--out",
                            str(tmp_path / "other.toml"), "--client-config", str(mine))  # fmt: skip
    assert code == 2 and "not a column all 2 answering departments offer" in both
    code, _, both = _invoke("job", "init", "--target", "y", "--out", str(out),
                            "--client-config", str(mine))  # fmt: skip
    assert code == 2 and "never overwrites" in both
