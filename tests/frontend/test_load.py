import onnx
import pytest
from onnx import TensorProto, helper

from qmlp.errors import ModelError
from qmlp.frontend import import_model, load_model
from qmlp.frontend.load import check_single_io, graph_outputs

from .builders import save, small_mlp


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match=r"nope\.onnx: no such file; pass the path of a QONNX model"):
        load_model(tmp_path / "nope.onnx")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage\xff\xff\xff\xff not protobuf")
    with pytest.raises(ModelError, match=r"bad\.onnx: not a readable ONNX model .*re-export it"):
        load_model(path)


def test_empty_graph(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.onnx: ONNX graph has no nodes"):
        load_model(path)


def test_two_inputs(tmp_path):
    model = small_mlp()
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 2]))
    with pytest.raises(ModelError, match=r"two\.onnx: model has 2 data inputs \['x', 'extra'\]; qmlp needs exactly one"):
        load_model(save(model, tmp_path / "two.onnx"))


def test_two_outputs(tmp_path):
    model = small_mlp()
    second = model.graph.node[3].output[0]  # an intermediate tensor made an extra output
    model.graph.output.append(helper.make_tensor_value_info(second, TensorProto.FLOAT, [1, 5]))
    with pytest.raises(ModelError, match=r"model has 2 outputs .*; qmlp needs exactly one"):
        load_model(save(model, tmp_path / "twoout.onnx"))


def test_constant_pseudo_outputs_are_ignored():
    """Brevitas' legacy export of binary activations lists initializers as outputs."""
    model = small_mlp()
    const_name = model.graph.initializer[0].name
    model.graph.output.append(helper.make_tensor_value_info(const_name, TensorProto.FLOAT, []))
    assert [o.name for o in graph_outputs(model)] == [model.graph.output[0].name]
    assert check_single_io(model, "m") is model


def test_initializers_listed_as_inputs_are_not_data_inputs(tmp_path):
    model = small_mlp()
    for init in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    df = import_model(save(model, tmp_path / "legacy.onnx"))
    assert df.input_shape == (6,) and df.name == "legacy"


def test_metadata_props_are_copied(tmp_path):
    model = small_mlp()
    onnx.helper.set_model_props(model, {"dataset": "can", "accuracy": "0.99"})
    df = import_model(save(model, tmp_path / "meta.onnx"))
    assert dict(df.metadata) == {"dataset": "can", "accuracy": "0.99"}
