"""Model files whose bytes depend only on the model: record-array padding is zeroed."""

import io
import pickle

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from epochstack.datasets import stable_pickle


def tree_with_garbage_padding(seed: int) -> DecisionTreeClassifier:
    """A fitted tree whose node records carry random bytes in their padding (as malloc leaves)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 5)), rng.integers(0, 3, 300)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    state = model.tree_.__getstate__()
    nodes = state["nodes"]
    noisy = np.frombuffer(np.random.default_rng(seed).bytes(nodes.nbytes), dtype=nodes.dtype).copy()
    for name in nodes.dtype.names:
        noisy[name] = nodes[name]
    state["nodes"] = noisy
    model.tree_.__setstate__(state)
    return model


def test_equal_models_give_equal_bytes_and_load_back():
    first, second = tree_with_garbage_padding(1), tree_with_garbage_padding(2)
    assert pickle.dumps(first) != pickle.dumps(second), "plain pickle copies the padding"
    assert stable_pickle.dumps(first) == stable_pickle.dumps(second)
    buffer = io.BytesIO()
    stable_pickle.dump(first, buffer)
    buffer.seek(0)
    loaded = stable_pickle.load(buffer)
    X = np.random.default_rng(3).standard_normal((50, 5))
    assert (loaded.predict_proba(X) == first.predict_proba(X)).all()
