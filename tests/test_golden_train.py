"""golden.training.ann_trainer: bias-free model builders, deterministic training, evaluation and the cached default MLP."""

import pytest
import torch
import torch.nn as nn

from golden.core.errors import DataError
from golden.data.mnist import default_split
from golden.training import ann_trainer as train_module
from golden.training.ann_trainer import (MlpRecipe, cache_dir, default_mlp, evaluate, make_convnet, make_mlp,
                                         random_shift, train)

TINY = MlpRecipe(hidden=(16,), epochs=1, train_subset=400)


@pytest.fixture(scope="module")
def split():
    return default_split()


def test_builders_are_bias_free():
    mlp = make_mlp((20, 10), dropout=0.5)
    assert [type(m).__name__ for m in mlp] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                              "Linear"]
    conv = make_convnet()
    assert all(m.bias is None for m in list(mlp) + list(conv) if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert not any(isinstance(m, nn.MaxPool2d) for m in conv)
    assert conv(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert mlp(torch.rand(2, 28, 28)).shape == (2, 10)


def test_random_shift():
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(6, 28, 28)
    images[:, 10:18, 10:18] = 1.0
    shifted = random_shift(images, 2, generator)
    assert shifted.shape == images.shape and torch.all(shifted.sum((1, 2)) == 64)  # the blob stays inside
    assert torch.equal(random_shift(images, 0, generator), images)
    assert random_shift(images.reshape(6, 1, 28, 28), 1, generator).shape == (6, 1, 28, 28)


def small_training(split, seed):
    torch.manual_seed(0)
    model = make_mlp((16,), dropout=0.2)
    rng_state = torch.get_rng_state()
    train(model, split.train_images[:500], split.train_labels[:500], epochs=1, batch_size=50, seed=seed,
          max_shift=1, progress=False)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's global RNG stream is left alone
    return model


def test_training_is_deterministic(split):
    first = small_training(split, seed=5)
    second = small_training(split, seed=5)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    other = small_training(split, seed=6)
    assert not torch.equal(first[1].weight, other[1].weight)
    assert not first.training


def test_training_learns(split):
    torch.manual_seed(0)
    model = make_mlp((32,), dropout=0.0)
    before = evaluate(model, split.test_images[:500], split.test_labels[:500])
    train(model, split.train_images[:2000], split.train_labels[:2000], epochs=4, lr=5e-3, progress=False)
    after = evaluate(model, split.test_images[:500], split.test_labels[:500])
    assert after > 0.8 and after > before + 0.3
    assert evaluate(model, split.test_images[:50].float() / 255, split.test_labels[:50]) == pytest.approx(
        evaluate(model, split.test_images[:50], split.test_labels[:50]))


def test_train_input_errors(split):
    with pytest.raises(DataError, match="labels"):
        train(make_mlp((4,)), split.train_images[:10], split.train_labels[:9], progress=False)
    with pytest.raises(DataError, match="dtype"):
        train(make_mlp((4,)), split.train_images[:10].long(), split.train_labels[:10], progress=False)


def test_default_mlp_is_cached(tmp_path, monkeypatch):
    model = default_mlp(tmp_path, recipe=TINY, progress=False)
    files = list(tmp_path.glob("mlp-*.pt"))
    assert len(files) == 1 and TINY.key() in files[0].name
    assert 0.0 <= model.test_accuracy <= 1.0 and not model.training

    def must_not_train(*args, **kwargs):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(train_module, "_train_recipe", must_not_train)
    again = default_mlp(tmp_path, recipe=TINY, progress=False)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert again.test_accuracy == model.test_accuracy


def test_recipe_key_and_cache_dir(tmp_path, monkeypatch):
    assert TINY.key() != MlpRecipe(hidden=(16,), epochs=2, train_subset=400).key()
    assert TINY.key() == MlpRecipe(hidden=(16,), epochs=1, train_subset=400).key()
    monkeypatch.setenv("SNNCOSIM_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("SNNCOSIM_CACHE")
    assert cache_dir().name == "snncosim"


def test_damaged_cache_is_rebuilt(tmp_path):
    path = tmp_path / f"mlp-{TINY.key()}.pt"
    path.write_bytes(b"not a torch file")
    model = default_mlp(tmp_path, recipe=TINY, progress=False)
    assert path.stat().st_size > 1000 and model(torch.rand(1, 784)).shape == (1, 10)
