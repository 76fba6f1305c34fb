"""The user's model is never modified: one snapshot and one check for every
test that says so (weights, ``training`` flags, ``requires_grad``, devices,
dtypes and module classes)."""

import torch


def snapshot(model):
    """What ``assert_unchanged`` compares, taken before the call."""
    return dict(
        state={k: v.clone() for k, v in model.state_dict().items()},
        training=[m.training for m in model.modules()],
        grads=[p.requires_grad for p in model.parameters()],
        devices=[p.device for p in model.parameters()],
        dtypes=[p.dtype for p in model.parameters()],
        types=[type(m) for m in model.modules()],
    )


def assert_unchanged(model, snap):
    """``model`` is as ``snapshot`` found it."""
    now = model.state_dict()
    assert now.keys() == snap["state"].keys()
    for key, value in snap["state"].items():
        assert now[key].device == value.device
        assert torch.equal(now[key], value), key
    assert [m.training for m in model.modules()] == snap["training"]
    assert [p.requires_grad for p in model.parameters()] == snap["grads"]
    assert [p.device for p in model.parameters()] == snap["devices"]
    assert [p.dtype for p in model.parameters()] == snap["dtypes"]
    assert [type(m) for m in model.modules()] == snap["types"]
