"""ONNX form of an exported surrogate, built operator by operator from its tensors.

The graph mirrors :class:`scynet_al.export.ExportableSurrogate`: input ``x``
``(n, d)`` double (GeV for a direct network), outputs ``chi2`` and ``sigma``
``(n,)`` double and ``in_domain`` ``(n,)`` bool. Members are written one after the
other (no batched products), so onnxruntime results agree with the torch program
to float32 rounding, not bit for bit. Built by hand with ``onnx.helper`` because
torch's own ONNX exporter needs the separate ``onnxscript`` package.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from scynet_al.export import ONNX_META_KEY, ExportableSurrogate

logger = logging.getLogger(__name__)

#: ONNX operator set used (reductions take their axes as attributes up to 17).
OPSET = 17


class _Graph:
    """Collects nodes and constants with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(
            numpy_helper.from_array(np.ascontiguousarray(array), name)
        )
        return name

    def op(
        self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any
    ) -> str:
        from onnx import helper

        out = out or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def all_true(self, mask: str, out: str | None = None) -> str:
        """Row-wise logical AND of a bool matrix ``(n, d)`` -> ``(n,)``."""
        as_int = self.op("Cast", mask, to=6)  # int32
        return self.op(
            "Cast", self.op("ReduceMin", as_int, axes=[1], keepdims=0), out=out, to=9
        )


def onnx_bytes(module: ExportableSurrogate, metadata: dict[str, Any]) -> bytes:
    """The ONNX model of ``module`` with ``metadata``, serialised in memory.

    The caller writes the bytes (:func:`scynet_al.files.write_atomically`), so a
    failed write never leaves half a model file behind.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    u, inside = _unit_map(g, module)
    box_lo = g.const(module.box_low.numpy(), "box_low")
    box_hi = g.const(module.box_high.numpy(), "box_high")
    in_box = g.all_true(
        g.op("And", g.op("GreaterOrEqual", u, box_lo), g.op("LessOrEqual", u, box_hi))
    )
    g.op("And", inside, in_box, out="in_domain")
    members = [_member(g, module, k, u) for k in range(module.n_members)]
    _mean_and_sigma(g, members, float(module.sigma_scale))

    n, d = "n_points", int(module.box_low.numel())
    graph = helper.make_graph(
        g.nodes, "scynet_al_surrogate",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [n, d])],
        [
            helper.make_tensor_value_info("chi2", TensorProto.DOUBLE, [n]),
            helper.make_tensor_value_info("sigma", TensorProto.DOUBLE, [n]),
            helper.make_tensor_value_info("in_domain", TensorProto.BOOL, [n]),
        ],
        g.initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "scynet-al"
    helper.set_model_props(model, {ONNX_META_KEY: json.dumps(metadata)})
    onnx.checker.check_model(model)
    logger.debug("ONNX model with %d nodes built", len(g.nodes))
    return model.SerializeToString()


def _unit_map(g: _Graph, module: ExportableSurrogate) -> tuple[str, str]:
    """Unit coordinates and the inside-the-space mask (all true for features)."""
    if module.unit_map is None:
        true = g.op("Cast", g.op("GreaterOrEqual", "x", "x"), to=9)
        return "x", g.all_true(true)
    m = module.unit_map
    totals = g.const(m.totals.numpy(), "totals")
    u, inside = None, None
    for k in range(m.n_intervals):
        lo = g.const(m.lows[k].numpy(), "low")
        hi = g.const(m.highs[k].numpy(), "high")
        off = g.const(m.offsets[k].numpy(), "offset")
        clamped = g.op("Min", g.op("Max", "x", lo), hi)
        along = g.op("Div", g.op("Add", g.op("Sub", clamped, lo), off), totals)
        above = g.op("GreaterOrEqual", "x", lo)
        within = g.op("And", above, g.op("LessOrEqual", "x", hi))
        u = along if u is None else g.op("Where", above, along, u)
        inside = within if inside is None else g.op("Or", inside, within)
    zero, one = g.const(np.array(0.0)), g.const(np.array(1.0))
    return g.op("Clip", u, zero, one), g.all_true(inside)


def _member(g: _Graph, module: ExportableSurrogate, k: int, u: str) -> str:
    """Chi2 of member ``k``, shape ``(n, 1)`` double."""
    s = module.stacked
    z = g.op(
        "Div",
        g.op("Sub", u, g.const(s.shift[k, 0].numpy())),
        g.const(s.scale[k, 0].numpy()),
    )
    if s.has_rotation:
        z = g.op("MatMul", z, g.const(s.rotation[k].numpy()))
    h = g.op("Cast", z, to=1)  # float32
    for i in range(s.n_layers):
        weight = getattr(s, f"weight{i}")[k].numpy()
        bias = getattr(s, f"bias{i}")[k, 0].numpy()
        h = g.op("Gemm", h, g.const(weight, "weight"), g.const(bias, "bias"))
        if s.tanh_output:
            h = g.op("Tanh", h)
        elif i < s.n_layers - 1:
            h = g.op("Relu", h)
    scaled = g.op("Mul", g.op("Cast", h, to=11), g.const(s.target_scale[k].numpy()))
    return g.op("Add", scaled, g.const(s.target_shift[k].numpy()))


def _mean_and_sigma(g: _Graph, members: list[str], sigma_scale: float) -> None:
    """Outputs ``chi2`` (member mean) and ``sigma`` (sample std, ddof 1, times
    ``sigma_scale``)."""
    stacked = g.op("Concat", *members, axis=1) if len(members) > 1 else members[0]
    mean = g.op("ReduceMean", stacked, axes=[1], keepdims=1)
    g.op("Squeeze", mean, g.const(np.array([1], dtype=np.int64)), out="chi2")
    if len(members) < 2:
        g.op("Sub", "chi2", "chi2", out="sigma")
        return
    squares = g.op("Mul", g.op("Sub", stacked, mean), g.op("Sub", stacked, mean))
    total = g.op(
        "ReduceSum", squares, g.const(np.array([1], dtype=np.int64)), keepdims=0
    )
    ddof = g.const(np.array(len(members) - 1.0))
    spread = g.op("Sqrt", g.op("Div", total, ddof))
    g.op("Mul", spread, g.const(np.array(sigma_scale)), out="sigma")
