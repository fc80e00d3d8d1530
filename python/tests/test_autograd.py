"""Autograd from Python: gradients against hand-written formulas and finite differences."""
import numpy as np
import pytest

import mmgrad


def test_backward_matches_the_formula():
    rng = np.random.default_rng(1)
    x, w0 = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    w = mmgrad.tensor(w0, requires_grad=True)
    loss = mmgrad.sum(mmgrad.tanh(mmgrad.tensor(x) @ w) ** 2)
    loss.backward()
    h = np.tanh(x @ w0)
    np.testing.assert_allclose(w.grad.numpy(), x.T @ (2 * h * (1 - h * h)), rtol=1e-10)


def test_gradcheck_passes_and_catches_a_wrong_gradient():
    rng = np.random.default_rng(2)
    a = mmgrad.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = mmgrad.tensor(rng.standard_normal((4,)), requires_grad=True)
    err = mmgrad.gradcheck(lambda t: mmgrad.sum(mmgrad.gelu(t[0] * t[1])), [a, b])
    assert err < 1e-6
    with pytest.raises(ValueError, match="gradcheck"):
        # detach() cuts the graph: the recorded gradient is zero, the numerical one is not.
        mmgrad.gradcheck(lambda t: mmgrad.sum(t[0].detach() * t[0]), [a])


def test_no_grad_records_nothing_and_cross_entropy_trains():
    rng = np.random.default_rng(3)
    x = mmgrad.tensor(rng.standard_normal((32, 4)).astype(np.float32))
    labels = mmgrad.tensor((rng.standard_normal(32) > 0).astype(np.int64))
    w = mmgrad.tensor(np.zeros((4, 2), dtype=np.float32), requires_grad=True)
    with mmgrad.no_grad():
        assert not (x @ w).requires_grad
    first = None
    for _ in range(50):
        loss = mmgrad.cross_entropy(x @ w, labels)
        first = first if first is not None else loss.item()
        w.zero_grad()
        loss.backward()
        with mmgrad.no_grad():
            w.numpy()[...] -= 0.5 * w.grad.numpy()   # an SGD step through the shared memory
    assert loss.item() < first
