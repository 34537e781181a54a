import pytest

from memgen.configs import ConfigError, RunConfig, get_profile, is_prime

BAD = [
    (dict(noise=1.0), "noise"), (dict(noise=-0.1), "noise"), (dict(width=0), "width"),
    (dict(p=1), "p="), (dict(task="mul", p=60), "prime"), (dict(train_frac=1.0), "train_frac"),
    (dict(train_frac=0.0), "train_frac"), (dict(task="div"), "task"), (dict(activation="tanh"), "activation"),
    (dict(optimizer="rmsprop"), "optimizer"), (dict(noise_mode="flip"), "noise_mode"), (dict(steps=0), "steps"),
    (dict(lr=-1e-3), "lr"), (dict(weight_decay=-1.0), "weight_decay"), (dict(loss="hinge"), "loss"),
    (dict(init="xavier"), "init"), (dict(p=5, train_frac=0.1, noise=0.3), "noise"),
    (dict(task="sub", noise_mode="symmetric", noise=0.2), "symmetric"),
]


@pytest.mark.parametrize("kwargs,name", BAD)
def test_bad_values_raise_one_clear_message(kwargs, name):
    with pytest.raises(ConfigError) as e:
        RunConfig(**kwargs)
    msg = str(e.value)
    assert name in msg and "\n" not in msg and "allowed" in msg


def test_unknown_profile_names_the_parameter():
    with pytest.raises(ConfigError, match="profile='fast'.*test, book, paper"):
        get_profile("fast")


def test_key_is_stable_and_ignores_device():
    a, b = RunConfig(noise=0.3), RunConfig(noise=0.3, device="cpu")
    assert a.key() == b.key() and a == b and hash(a) == hash(b)
    assert RunConfig(noise=0.3, seed=1).key() != a.key()
    assert RunConfig.from_dict(a.identity()) == a


def test_batch_key_groups_only_compatible_runs():
    a = RunConfig(noise=0.1, seed=1, lr=1e-3)
    assert a.batch_key() == RunConfig(noise=0.5, seed=2, weight_decay=0.3).batch_key()
    assert a.batch_key() != RunConfig(width=33).batch_key()


def test_profiles_override_and_none_means_default():
    prof = get_profile("paper")
    c = prof.config(width=None, noise=0.2)
    assert (c.p, c.width, c.steps, c.lr, c.weight_decay) == (113, prof.width, 200_000, 1e-3, 0.1)
    with pytest.raises(ConfigError, match="unknown run parameter"):
        prof.config(depth=3)


def test_is_prime():
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


@pytest.mark.parametrize("name", ["train_frac", "noise", "lr", "weight_decay", "beta1", "beta2"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_field_refuses_nan_and_inf(name, value):
    with pytest.raises(ConfigError, match=f"{name}=.* is not allowed; it must be a finite number"):
        RunConfig(**{name: value})


def test_batch_size_cannot_exceed_the_training_set():
    c = RunConfig(p=23, batch_size=264)  # the whole training set: allowed
    assert c.batch_size == c.n_train
    with pytest.raises(ConfigError, match="batch_size=265 is not allowed with 264 training pairs"):
        RunConfig(p=23, batch_size=265)


def test_profile_activation_widths_are_among_its_widths():
    """Chapter 2's activation sweep runs at widths of the profile's grid (it shares their runs);
    the book's stops below its widest width (the CPU build's budget)."""
    from memgen.configs import PROFILES

    for prof in PROFILES.values():
        assert set(prof.activation_widths) <= set(prof.widths), prof.name
    book = PROFILES["book"]
    assert book.activation_widths and max(book.activation_widths) < max(book.widths)


def test_profile_side_sweeps_of_chapter_2():
    """The weight-decay sweep's widths belong to the grid (sharing its runs at wd 1); the book's
    side sweeps are trimmed for its build (one activation seed, widths up to 65), the GPU profiles'
    are whole."""
    from memgen.configs import PROFILES

    for prof in PROFILES.values():
        assert set(prof.wd_widths) <= set(prof.widths), prof.name
    assert {name: prof.activation_seeds for name, prof in PROFILES.items()} == {
        "test": 0, "book": 1, "paper": 0, "paper20k": 0}
    book = PROFILES["book"]
    assert book.activation_seeds == 1 and book.wd_widths == (17, 33, 65)
    for name in ("paper", "paper20k"):
        assert PROFILES[name].activation_seeds == 0 and PROFILES[name].wd_widths == ()
