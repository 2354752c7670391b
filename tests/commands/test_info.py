import json

import numpy as np
import pytest
from qonnx.util.inference_cost import inference_cost

from qmlp.cli import main
from qmlp.commands.info import summarize
from qmlp.frontend import import_model


@pytest.mark.parametrize("name", ["ternary_w2a2", "int2_uint4_bias_dynamo", "perchannel_int4_hardtanh3"])
def test_macs_agree_with_qonnx_inference_cost(zoo, name):
    path = zoo(name)
    summary = summarize(import_model(path))
    dense = inference_cost(str(path), discount_sparsity=False)["total_cost"]
    sparse = inference_cost(str(path), discount_sparsity=True)["total_cost"]
    assert summary["total_macs"] == dense["total_macs"]
    assert summary["total_nonzero_macs"] == sparse["total_macs"]


def test_info_table(zoo, capsys):
    assert main(["info", str(zoo("ternary_w2a2"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ternary_w2a2: input INT8 (37,) -> output (5,), 3 layers")
    assert lines[1].split() == ["layer", "in", "out", "weights", "in", "type", "acc", "out", "type", "zeros", "MACs",
                                "nonzero", "MACs"]
    assert lines[2].split()[:7] == ["fc0", "37", "53", "TERNARY", "INT8", "INT13", "UINT2"]
    assert lines[-1].split()[0] == "total" and int(lines[-1].split()[1]) == 37 * 53 + 53 * 29 + 29 * 5


def test_info_json_sparsity(zoo, capsys):
    df = import_model(zoo("qcdq_ternary_w2a2"))
    assert main(["info", str(zoo("qcdq_ternary_w2a2")), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for layer, entry in zip(df.layers, data["layers"]):
        assert entry["sparsity"] == pytest.approx(np.mean(layer.weights == 0))
        assert entry["zero_weights"] + entry["nonzero_macs"] == layer.weights.size


def test_info_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.onnx")]) == 2
    assert "none.onnx: no such file" in capsys.readouterr().err


def test_info_of_a_compiled_out_shows_folding_timing_and_resources(tmp_path, capsys):
    from qmlp.ir import save
    from qmlp.testing import random_dataflow

    save(random_dataflow(3, widths=(16, 12, 8, 4)), tmp_path / "random.json")
    assert main(["compile", str(tmp_path / "random.json"), "-o", str(tmp_path / "out"), "--target-fps", "100k"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    perf = json.loads((tmp_path / "out" / "report" / "estimate_network_performance.json").read_text())
    total = json.loads((tmp_path / "out" / "report" / "estimate_layer_resources.json").read_text())["total"]
    assert "PE x SIMD" in text.splitlines()[1]
    assert f"II {perf['ii_cycles']:g} cycles" in text and f"latency {perf['latency_cycles']} cycles" in text
    assert f"resources (analytical estimate): {total['LUT']:g} LUT, {total['FF']:g} FF" in text
    assert "resources (Yosys netlist): not run; compile with --synth" in text
