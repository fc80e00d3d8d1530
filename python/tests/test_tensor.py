"""Tensors to and from NumPy, and ops against NumPy's results."""
import numpy as np
import pytest

import mmgrad


def test_from_numpy_shares_memory_both_ways():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = mmgrad.from_numpy(a)
    assert t.shape == (3, 4) and t.dtype == "f32"
    a[1, 2] = -7.0                      # the tensor sees the array's change
    assert t.numpy()[1, 2] == -7.0
    view = t.numpy()
    view[0, 0] = 42.0                   # and the array sees the tensor's memory
    assert a[0, 0] == 42.0


def test_strided_arrays_are_used_in_place_and_negative_strides_copied():
    a = np.arange(20, dtype=np.float64).reshape(4, 5)
    t = mmgrad.from_numpy(a[:, 1::2])   # a strided view: no copy
    np.testing.assert_array_equal(t.numpy(), a[:, 1::2])
    a[0, 1] = 99
    assert t.numpy()[0, 0] == 99
    r = mmgrad.from_numpy(a[::-1])      # negative strides: copied
    np.testing.assert_array_equal(r.numpy(), a[::-1])


def test_numpy_view_keeps_the_tensor_alive():
    view = mmgrad.randn([1000], seed=3).numpy()
    assert view.shape == (1000,) and np.isfinite(view).all()
    assert abs(view.mean()) < 0.2 and 0.8 < view.std() < 1.2


def test_tensor_copies_and_converts():
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    t = mmgrad.tensor(a)
    a[0, 0] = 100
    assert t.numpy()[0, 0] == 1         # tensor() copies, as torch.tensor does
    assert mmgrad.tensor(a, dtype="f64").dtype == "f64"
    with pytest.raises(TypeError):
        mmgrad.from_numpy(np.zeros(3, dtype=np.complex64))


def test_ops_match_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    tx, ty = mmgrad.tensor(x), mmgrad.tensor(y)
    np.testing.assert_allclose((tx @ ty).numpy(), x @ y, rtol=1e-12)
    np.testing.assert_allclose((tx * 2 + 1).numpy(), x * 2 + 1)
    np.testing.assert_allclose(mmgrad.softmax(tx, 1).numpy(), np.exp(x) / np.exp(x).sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(tx.sum(dim=0).numpy(), x.sum(0), rtol=1e-12)
    np.testing.assert_allclose(mmgrad.tanh(tx).numpy(), np.tanh(x), rtol=1e-12)
    assert (tx @ ty).T.shape == (5, 4)


def test_bad_shapes_raise_a_clear_error():
    with pytest.raises(mmgrad.Error, match="matmul"):
        mmgrad.zeros([2, 3]) @ mmgrad.zeros([2, 3])
