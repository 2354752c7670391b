"""Hostile frames and requests get one-line refusals with no exception text before authentication,
no absolute path of the agent's machine, and the session (or the agent) goes on (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hil.conftest import TOKEN, agent, design_dir, raw_connect  # noqa: F401  (fixtures)
from qmlp import ir
from qmlp.hil.agent import _Sink
from qmlp.hil.client import BoardClient
from qmlp.hil.protocol import MAGIC, PREFIX, HilError, Limits, RemoteError, array_part, file_part, recv_frame
from qmlp.sim.bitaccurate import run_integer

# Everything an unauthenticated peer can ever read from the agent besides the challenge.
PREAUTH_MESSAGES = {
    "authenticate first: answer the challenge with AUTH",
    "AUTH needs client_nonce and proof (is a token file configured?)",
    "wrong token: the proof does not match the agent's token file",
    "before authentication a frame is one header of at most 4 KiB, no payload",
    "not a valid qmlp frame; answer the challenge with AUTH",
    "no complete AUTH frame within the handshake deadline",
}


def _raw(header: bytes, payload_len: int = 0) -> bytes:
    return PREFIX.pack(MAGIC, len(header), payload_len) + header


LONE = '"\\ud800\\udfff\\udc00' + "a" * 40 + '"'  # JSON escapes of lone surrogates: valid JSON, not UTF-8 text


@pytest.mark.parametrize("data", [
    _raw(b'{"cmd": "AUTH", "client_nonce": ' + LONE.encode() + b', "proof": ' + LONE.encode() + b"}"),
    _raw(b'{"cmd": "AUTH", "client_nonce": "' + b"ab" * 16 + b'", "proof": ' + LONE.encode() + b"}"),
    _raw(b'{"cmd": "AUTH", "client_nonce": "' + b"ab" * 16 + b'", "proof": "\xc3\xa9' + b"0" * 62 + b'"}'),
    _raw(b'{"cmd": "AUTH", "client_nonce": NaN, "proof": Infinity}'),
    _raw(b'{"cmd": "AUTH", "client_nonce": 1e999}'),
    _raw(b'{"cmd": "AUTH", "client_nonce": ["' + b"ab" * 16 + b'"], "proof": {}}'),
    _raw(b"\xff\xfe" + b"{}"),
    _raw(b"[" * 2000 + b"]" * 2000),
    _raw(b'{"cmd": "AUTH"}', payload_len=1),
    _raw(b"{}" + b" " * 5000),
    b"GET / HTTP/1.1\r\n\r\n",
    _raw(b'{"cmd": "HELLO"}'),
])
def test_errors_before_authentication_are_fixed_texts(agent, design_dir, data):
    sock, _ = raw_connect(agent)
    sock.sendall(data)
    reply = recv_frame(sock, Limits(), first_byte_seconds=5)
    assert reply.header["type"] == "error" and reply.header["message"] in PREAUTH_MESSAGES, reply.header
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:  # the agent goes on
        assert client.hello()["protocol"] == 1


def _request(client: BoardClient, header: dict, parts=()) -> RemoteError:
    with pytest.raises(RemoteError) as refused:
        client.request(header, parts)
    message = refused.value.remote_message
    assert "\n" not in message and "Traceback" not in message
    return refused.value


def test_inputs_are_range_checked_in_their_own_dtype(agent, design_dir):
    df = ir.load(design_dir / "dataflow.json")
    n = df.input.features
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        client.load(design_dir)
        for q in (np.full((1, n), 2**64 - 1, np.uint64),  # would wrap to -1 as int64
                  np.full((1, n), 2**63, np.uint64),
                  np.full((1, n), df.input.qmax + 1, np.uint64),
                  np.full((1, n), -(2**63), np.int64)):
            error = _request(client, {"cmd": "RUN"}, [array_part("q", q)])
            assert error.code == "BAD_INPUT" and "outside the input range" in error.remote_message
        for dtype in (np.uint8, np.uint16, np.uint64, np.int8, np.int32):  # in-range values of any integer dtype run
            q = np.clip(np.arange(n), max(df.input.qmin, 0), df.input.qmax).astype(dtype)[None, :]
            reply = client.run(q=q)
            assert np.array_equal(reply.q, q.astype(np.int64))
            assert np.array_equal(reply.out, run_integer(df, q.astype(np.int64))[1][-1])


@pytest.mark.parametrize("seed", [-1, 2**63, 2**70, True, 1.5, "7"])
def test_bench_seed_outside_numpy_range_is_refused(agent, design_dir, seed):
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        client.load(design_dir)
        error = _request(client, {"cmd": "BENCH", "iterations": 1, "seed": seed})
        assert error.code == "BAD_REQUEST" and "BENCH seed=" in error.remote_message
        assert len(client.bench(iterations=1, seed=2**63 - 1).wall_s) == 1


@pytest.mark.parametrize("names", [("rtl/a", "rtl/a/b"), ("rtl/a/b", "rtl/a"), ("rtl", "rtl/qmlp_top.v")])
def test_a_name_that_is_both_file_and_folder_is_refused_without_paths(agent, design_dir, names):
    dataflow = (design_dir / "dataflow.json").read_bytes()
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        parts = [file_part("dataflow.json", dataflow), file_part("rtl/qmlp_top.v", b"module m; endmodule\n")]
        parts += [file_part(name, b"x") for name in names if name != "rtl/qmlp_top.v"]
        error = _request(client, {"cmd": "LOAD"}, parts)
        assert error.code == "BAD_NAME" and "both a file and a folder" in error.remote_message
        assert str(agent.workdir) not in error.remote_message and "/tmp" not in error.remote_message
        assert client.load(design_dir)["files"] == 2  # the session goes on


@pytest.mark.parametrize("document", [
    b"[]", b"{}", b'"x"', b"null", b"[" * 100000 + b"]" * 100000, b"\xff",
    b'{"schema": "qmlp.dataflow", "schema_version": 1}',
    b'{"schema": "qmlp.dataflow", "schema_version": 1, "input": [], "layers": 7}',
])
def test_malformed_dataflow_json_is_one_line_bad_design(agent, design_dir, document):
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        client.load(design_dir)
        loaded = client.hello()["design"]
        error = _request(client, {"cmd": "LOAD"}, [file_part("dataflow.json", document),
                                                  file_part("rtl/qmlp_top.v", b"module m; endmodule\n")])
        assert error.code == "BAD_DESIGN" and error.remote_message.startswith("dataflow.json is not a valid qmlp dataflow")
        assert client.hello()["design"] == loaded  # the previous design survived
    assert sorted(p.name for p in (agent.workdir / "designs").iterdir()) == [loaded]  # no partial upload kept


@pytest.mark.parametrize("extra, says", [
    (b"NaN", "non-finite number NaN (JSON has no NaN or Infinity)"),
    (b"-Infinity", "non-finite number -Infinity"),
    (b"[" * 65 + b"]" * 65, "JSON nested too deeply (limit 64 levels)"),
])
def test_dataflow_json_is_read_with_the_clis_bounds(agent, design_dir, extra, says):
    """Even where ir.from_json looks at nothing (an unknown key), the upload is parsed as the CLI
    parses OUT/dataflow.json: untrusted.parse_json."""
    text = (design_dir / "dataflow.json").read_bytes().rstrip()
    assert text.endswith(b"}")
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        error = _request(client, {"cmd": "LOAD"}, [file_part("dataflow.json", text[:-1] + b',"notes":' + extra + b"}"),
                                                  file_part("rtl/qmlp_top.v", b"module m; endmodule\n")])
    assert error.code == "BAD_DESIGN" and error.remote_message.startswith("dataflow.json is not a valid qmlp dataflow")
    assert says in error.remote_message and "\n" not in error.remote_message


def test_tampered_dataflow_variants_are_refused(agent, design_dir):
    good = json.loads((design_dir / "dataflow.json").read_text())
    variants = []
    for key in ("input", "layers", "output", "input_shape"):  # (name: null is ir.from_json's to refuse)
        variants.append({**good, key: None})
    variants.append({**good, "layers": [{**good["layers"][0], "weights": [[10**30]]}]})
    variants.append({**good, "input": {**good["input"], "qmax": 1e300}})
    variants.append({**good, "stream": {"bogus": 1}})
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        for document in variants:
            error = _request(client, {"cmd": "LOAD"}, [file_part("dataflow.json", json.dumps(document).encode()),
                                                      file_part("rtl/qmlp_top.v", b"module m; endmodule\n")])
            assert error.code == "BAD_DESIGN", (document.keys(), error)


def test_oversized_dataflow_is_refused_before_it_is_read(tmp_path, design_dir):
    from hil.conftest import make_agent

    agent = make_agent(tmp_path / "w", max_dataflow_bytes=1000)
    try:
        with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
            error = _request(client, {"cmd": "LOAD"}, [file_part("dataflow.json", b" " * 1001),
                                                      file_part("rtl/qmlp_top.v", b"module m; endmodule\n")])
            assert error.code == "LIMIT" and "dataflow.json of 1001 bytes exceeds the limit of 1000" in error.remote_message
            assert client.hello()["protocol"] == 1  # the refused payload was drained: the session is in step
    finally:
        agent.stop()


def test_a_storage_failure_is_remembered_not_raised(tmp_path):
    (tmp_path / "file").write_text("x")
    sink = _Sink(tmp_path / "file" / "below")  # the parent is a file
    sink.write(memoryview(b"data"))
    sink.close()
    assert isinstance(sink.error, OSError)


def test_messages_name_what_they_are_about(agent, design_dir):
    df = ir.load(design_dir / "dataflow.json")
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        error = _request(client, {"cmd": "RUN"}, [array_part("q", np.zeros((1, df.input.features), np.int64))])
        assert error.code == "NOT_LOADED" and error.remote_message.startswith("no design loaded: send LOAD")
    from qmlp.hil.sim import SimBackend

    with pytest.raises(HilError, match="virtual board: no design loaded; send LOAD before RUN"):
        SimBackend().run(np.zeros((1, 2), np.int64))


def test_a_vanished_agent_is_named_in_the_clients_error(tmp_path, design_dir):
    from hil.conftest import make_agent

    agent = make_agent(tmp_path / "w")
    host, port = agent.address
    with BoardClient(host, port, TOKEN, timeout_s=10) as client:
        agent.stop()  # closes the session's socket
        with pytest.raises(HilError, match=rf"(agent|agent at) {host}:{port} (closed the connection|lost)|"
                                           rf"connection to agent {host}:{port} lost"):
            client.hello()



def test_a_broken_work_folder_is_a_storage_refusal_and_the_session_goes_on(agent, design_dir):
    designs = agent.workdir / "designs"
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        designs.rmdir()
        designs.write_text("not a folder")  # as if the disk or WORKDIR had broken under the agent
        try:
            error = _request(client, {"cmd": "LOAD"}, [file_part("dataflow.json", (design_dir / "dataflow.json").read_bytes()),
                                                      file_part("rtl/qmlp_top.v", b"module m; endmodule\n" * 1000)])
        finally:
            designs.unlink()
            designs.mkdir()
        assert error.code == "STORAGE" and "cannot create an upload folder" in error.remote_message
        assert str(agent.workdir) not in error.remote_message
        assert client.load(design_dir)["files"] == 2  # the refused payload was drained


@pytest.mark.parametrize("bad, shown", [(np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "nan"), (1e300, "1e+300")])
def test_agent_refuses_non_finite_x_like_the_cli(agent, design_dir, bad, shown):
    """qmlp's one rule (docs/troubleshooting.md "Non-finite inputs"): refused, never clipped."""
    n = ir.load(design_dir / "dataflow.json").input.features
    x = np.zeros((2, n), np.float64)
    x[1, 3] = bad
    with BoardClient(*agent.address, TOKEN, timeout_s=10) as client:
        client.load(design_dir)
        error = _request(client, {"cmd": "RUN"}, [array_part("x", x)])
        assert error.code == "BAD_INPUT"
        assert error.remote_message == (f"'x': 1 values are NaN or infinite (or beyond float32), first at index [1, 3] "
                                        f"({shown}); the input quantizer has no code for them")
        assert client.run(x=np.zeros((2, n), np.float32)).out.shape[0] == 2  # the session goes on
