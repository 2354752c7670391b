"""The lowering passes one by one, and the exhaustive threshold check on every zoo model."""

import numpy as np
import pytest

from qmlp.datatypes import BIPOLAR, INT, TERNARY, UINT
from qmlp.frontend import import_model, load_model, lower
from qmlp.frontend.chain import QuantStep, check_supported_ops, extract_chain
from qmlp.frontend.lower import (accumulator_dtype, apply_post_ops, derive_thresholds, fold_output_affine,
                                 level_function, lower_input, orient_channels, split_layers)
from qmlp.ir import accumulator_range, verify
from qmlp.sim.bitaccurate import apply_thresholds
from zoo import NAMES

from .builders import GraphBuilder, small_mlp


def quant(qmin, qmax, bipolar=False, scale=1.0):
    return QuantStep("q", "t", np.array([scale], np.float32), qmin, qmax, bipolar)


def brute_force_levels(levels, low, high):
    return [levels(np.arange(l, h + 1)[None, :])[0] for l, h in zip(low, high)]


def test_derive_thresholds_matches_brute_force_incl_ties_and_clipping():
    # level(a) = clip(round_half_even(a * 0.5 - 1), 0, 3): exact .5 ties at odd a
    q = quant(0, 3)
    levels = lambda a: q.levels(a * 0.5 - 1.0, 1.0)  # noqa: E731
    low, high = np.array([-10, 3]), np.array([20, 4])
    t = derive_thresholds(levels, low, high, q)
    assert t.bias == 0 and t.out_dtype == UINT(2)
    for c in range(2):
        a = np.arange(low[c], high[c] + 1)
        counts = (a[:, None] >= t.values[c][None, :]).sum(axis=1)
        assert np.array_equal(counts + t.bias, levels(a[None, :])[0])
    # a=3 gives round(0.5) = 0 (half to even), so level 1 starts at a=4; levels 2, 3 are unreachable
    # on [3, 4] and sit at high + 1 = 5, never beyond
    assert t.values[1].tolist() == [4, 5, 5]


def test_derive_thresholds_signed_output_bias():
    q = quant(-2, 1)
    t = derive_thresholds(lambda a: q.levels(a / 3.0, 1.0), np.array([-9]), np.array([9]), q)
    assert t.bias == -2 and t.out_dtype == INT(2) and t.steps == 3
    a = np.arange(-9, 10)
    assert np.array_equal((a[:, None] >= t.values[0]).sum(axis=1) - 2, np.clip(np.round(a / 3.0), -2, 1))


def test_orient_channels_flags_decreasing_channels():
    q = quant(0, 3)
    levels = lambda a: q.levels(a * np.array([[1.0], [-1.0], [0.0]]), 1.0)  # noqa: E731
    mask = orient_channels(levels, np.array([-5, -5, -5]), np.array([5, 5, 5]))
    assert mask.tolist() == [False, True, False]


def test_constant_channel_gets_thresholds_outside_the_range():
    q = quant(0, 3)
    t = derive_thresholds(lambda a: q.levels(np.zeros(a.shape) + 2.0, 1.0), np.array([-4]), np.array([4]), q)
    assert t.values[0].tolist() == [-4, -4, 5]  # always >= level 2, never level 3


def test_fold_output_affine_equals_post_ops():
    g = GraphBuilder()
    rng = np.random.default_rng(2)
    h = g.dense(g.quant("x", 0.1, 8), rng.uniform(-1, 1, (4, 5)), np.array([[0.5], [0.25], [1.0], [2.0]]),
                gemm=True, bias=rng.normal(size=4))
    h = g.node("BatchNormalization", [h, g.const(rng.uniform(-1, 1, 4)), g.const(rng.normal(size=4)),
                                      g.const(rng.normal(size=4)), g.const(rng.uniform(0.5, 2, 4))])
    h = g.node("Sub", [g.const(0.25), h])
    y = g.node("Div", [g.node("Mul", [h, g.const(3.0)]), g.const(rng.uniform(1, 2, 4))])
    _, specs = split_layers(extract_chain(g.model(y, (5,), (4,))))
    out = fold_output_affine(specs[0])
    acc = np.arange(-50, 51)[None, :].repeat(4, axis=0)
    unit = 0.1 * np.float32(1.0) * specs[0].matmul.scale[:, None]
    expected = apply_post_ops(specs[0].post, acc * np.float64(np.float32(0.1)) * specs[0].matmul.scale[:, None])
    np.testing.assert_allclose(acc * out.scale[:, None] + out.bias[:, None], expected, rtol=1e-12, atol=1e-12)
    assert unit.shape == (4, 1)


def test_accumulator_dtype_is_minimal():
    w = np.array([[1, -1, 1], [0, 1, 0]])
    assert accumulator_dtype(w, UINT(2)) == INT(4)  # range [-3, 6]
    assert accumulator_dtype(np.array([[1, 1]]), UINT(2)) == UINT(3)  # [0, 6]
    assert accumulator_dtype(w, INT(8)) == INT(10)  # [-384, 381]


def test_lower_input_broadcasts_the_scale():
    inp = lower_input(quant(-128, 127, scale=0.25), 7)
    assert inp.scale.shape == (7,) and inp.scale.dtype == np.float32 and np.all(inp.scale == 0.25)
    assert (inp.qmin, inp.qmax, inp.dtype) == (-128, 127, INT(8))


def test_decreasing_int2_channel_keeps_weight_type_and_is_marked_negate():
    g = GraphBuilder()
    w = np.array([[-1.0, 0.5, -1.0], [1.0, -1.0, 0.5]])  # with scale 0.5 -> ints include -2 (non-narrow INT2)
    h = g.dense(g.quant("x", 0.1, 4, signed=False), w, 0.5, bits=2, narrow=False)
    h = g.node("Mul", [h, g.const([1.0, -1.0])])  # channel 1 decreasing
    y = g.quant(g.node("Relu", [h]), 0.05, 2, signed=False)
    df = lower(g.model(y, (3,), (2,)))
    verify(df)
    layer = df.layers[0]
    assert layer.weights.tolist() == [[-2, 1, -2], [1, -2, 1]]  # as trained: negating -2 would need INT3
    assert layer.weight_dtype == INT(2) and layer.activation.negate.tolist() == [False, True]
    # channel 1 at every reachable accumulator: level = clip(round(-a * 0.5 * 0.1 / 0.05), 0, 3) = clip(round(-a), 0, 3)
    low, high = accumulator_range(layer.weights, layer.in_dtype)
    a = np.arange(low[1], high[1] + 1)
    acc = np.zeros((a.size, 2), np.int64)
    acc[:, 1] = a
    assert np.array_equal(apply_thresholds(layer.activation, acc)[:, 1], np.clip(np.round(-a * 1.0), 0, 3))


def test_small_mlp_lowers_to_verified_ir():
    df = lower(small_mlp())
    verify(df)
    assert [l.weight_dtype for l in df.layers] == [TERNARY, TERNARY]
    assert df.layers[0].activation.out_dtype == UINT(2) and df.layers[1].activation is None


@pytest.mark.parametrize("name", NAMES)
def test_thresholds_equal_float_reference_at_every_accumulator_value(zoo, name):
    """Exhaustive: for every channel, every reachable accumulator value a, the IR's
    ``count(a) + bias`` equals the float64 reference chain's level at the original a."""
    path = zoo(name)
    df = import_model(path)
    _, specs = split_layers(extract_chain(check_supported_ops(load_model(path))))
    checked = 0
    for spec, layer in zip(specs, df.layers):
        if layer.activation is None:
            continue
        levels = level_function(spec)
        assert np.array_equal(layer.weights, spec.matmul.weights)  # trained weights, never negated
        low, high = accumulator_range(layer.weights, layer.in_dtype)
        # every channel at once: row c walks low[c] .. high[c] (padded by repeating high[c])
        span = np.arange(int((high - low).max()) + 1)
        grid = np.minimum(low[:, None] + span[None, :], high[:, None])
        ir = apply_thresholds(layer.activation, grid.T).T
        expected = levels(grid)
        bad = np.argwhere(ir != expected)
        assert bad.size == 0, f"{name} {layer.name}: channel/offset {bad[:5].tolist()} differ"
        checked += int((high - low + 1).sum())
    assert checked > 0 or all(l.activation is None for l in df.layers)


def post_op_model(model, spec):
    """The nodes from the MatMul/Gemm output to the quantizer's output, as a model of their own
    whose input is that MatMul output (batch, channels)."""
    from onnx import TensorProto, helper

    consumers = {}
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, tensor = [], spec.matmul.tensor
    while tensor != spec.out_quant.tensor:
        (node,) = consumers[tensor]
        nodes.append(node)
        tensor = node.output[0]
    inits = {init.name: init for init in model.graph.initializer}
    needed = {name for node in nodes for name in node.input if name and name != spec.matmul.tensor}
    extra = [producer[name] for name in needed if name not in inits and name in producer]  # Constant nodes
    channels = spec.matmul.weights.shape[0]
    graph = helper.make_graph(
        extra + nodes, "post_ops",
        [helper.make_tensor_value_info(spec.matmul.tensor, TensorProto.FLOAT, [None, channels])],
        [helper.make_tensor_value_info(spec.out_quant.tensor, TensorProto.FLOAT, [None, channels])],
        initializer=[inits[name] for name in needed if name in inits])
    sub = helper.make_model(graph, opset_imports=list(model.opset_import))
    sub.ir_version = model.ir_version
    return sub


@pytest.mark.parametrize("name", NAMES)
def test_float_chain_equals_onnx_runtime_at_every_accumulator_value(zoo, name):
    """Independent of the frontend's own float64 evaluation: run the model's post-MatMul nodes in
    qonnx/onnxruntime (float32) on every reachable accumulator value of every channel; levels may
    differ only at float32 rounding ties."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from qmlp.frontend.lower import prequant_function, uniform_scale
    from qmlp.sim.reference import _near_boundary

    path = zoo(name)
    model = load_model(path)
    _, specs = split_layers(extract_chain(check_supported_ops(model)))
    in_dtype = import_model(path).input.dtype
    for spec in specs:
        if spec.out_quant is None:
            break
        low, high = accumulator_range(spec.matmul.weights, in_dtype)
        span = np.arange(int((high - low).max()) + 1)
        acc = np.minimum(low[:, None] + span[None, :], high[:, None])  # (channels, values)
        unit = uniform_scale(spec.in_quant, spec.matmul) * spec.matmul.scale
        bias = spec.matmul.bias if spec.matmul.bias is not None else 0.0
        real = (acc * unit[:, None] + np.reshape(bias, (-1, 1))).astype(np.float32)
        sub = ModelWrapper(post_op_model(model, spec))
        sub.set_tensor_shape(spec.matmul.tensor, list(real.T.shape))
        sub.set_tensor_shape(spec.out_quant.tensor, list(real.T.shape))
        sub = sub.transform(InferShapes())
        out = execute_onnx(sub, {spec.matmul.tensor: real.T})[spec.out_quant.tensor].T
        onnx_levels = np.round(out / spec.out_quant.scale.reshape(-1, 1).astype(np.float64)).astype(np.int64)
        ours = level_function(spec)(acc)
        differ = onnx_levels != ours
        y = prequant_function(spec)(acc)
        assert not np.any(differ & ~_near_boundary(y, spec.out_quant.bipolar)), \
            f"{name} {spec.matmul.node}: {int(differ.sum())} levels differ away from a rounding tie"
        in_dtype = spec.out_quant.dtype


@pytest.mark.parametrize("name, weights", [("seed_w2a2_negbn", INT(2)), ("ternary_w2a2", TERNARY),
                                           ("bipolar_all", BIPOLAR)])
def test_negative_batchnorm_scales_keep_the_trained_weight_type(zoo, name, weights):
    """Brevitas models whose BatchNorm has negative scales: the channels are marked negate and
    every layer keeps its trained weight type (INT2 with -2 included stays INT2)."""
    df = import_model(zoo(name))
    assert all(layer.weight_dtype == weights for layer in df.layers)
    negated = [int(layer.activation.negate.sum()) for layer in df.layers if layer.activation is not None]
    assert negated[0] > 0, negated  # the BatchNorm layers (the last one may have none)
    if weights == INT(2):
        assert any(np.any(layer.weights == -2) for layer in df.layers)
