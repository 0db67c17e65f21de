"""The synthetic world: planted band groups, twin phenology, parcels, clouds, speckle."""

import numpy as np

from maestro.data.demo import world


def test_twins_share_signature_but_not_timing():
    phen = world.class_phenologies(6, 3, np.random.default_rng(0))
    a, b = phen[2], phen[3]
    np.testing.assert_array_equal(a.base, b.base)
    assert abs((b.peak_doy - a.peak_doy) % 365.25 - 120) < 1e-9
    days = np.arange(1, 366)
    np.testing.assert_allclose(a.level(days).mean(0), b.level(days).mean(0), atol=1e-3)
    assert np.abs(a.level(days) - b.level(days)).max() > 0.05


def test_render_bands_plants_group_correlations():
    rng = np.random.default_rng(1)
    labels = world.parcels((60, 60), 12, np.ones(4), rng)
    frac = world.class_fractions(labels, 4, (30, 30))
    np.testing.assert_allclose(frac.sum(0), 1.0, atol=1e-6)
    phen = world.class_phenologies(4, 3, rng)
    groups = list(world.LATENT_GROUPS["s2"].values())
    x = world.render_bands(frac, world.class_levels(phen, 180), groups, 0.05, 0.005, rng)
    corr = np.corrcoef(x.reshape(len(groups), -1))
    within = [corr[i, j] for i in range(10) for j in range(10) if i != j and groups[i] == groups[j]]
    across = [abs(corr[i, j]) for i in range(10) for j in range(10) if groups[i] != groups[j]]
    assert min(within) > 0.95 and max(across) < min(within)
    assert world.planted_groups("s2")[2] == ["B11", "B12"]


def test_parcels_are_spatially_coherent():
    labels = world.parcels((64, 64), 8, np.ones(5), np.random.default_rng(2))
    same_right = (labels[:, 1:] == labels[:, :-1]).mean()
    assert same_right > 0.9  # neighbours mostly share a parcel


def test_clouds_and_speckle():
    rng = np.random.default_rng(3)
    cloud = world.cloud_field((40, 40), 0.3, rng)
    assert abs((cloud > 0).mean() - 0.3) < 0.02 and cloud.max() <= 100
    assert not world.cloud_field((5, 5), 0.0, rng).any()
    x = np.full(200_000, 0.1)
    s = world.speckle(x, 4.0, rng)
    assert abs(s.mean() - 0.1) < 1e-3 and abs(s.std() / s.mean() - 0.5) < 0.01  # 1/sqrt(L)


def test_class_fractions_at_a_non_integer_ratio_split_edge_pixels():
    labels = np.array([[0, 1, 1], [0, 1, 1], [2, 2, 2]])
    frac = world.class_fractions(labels, 3, (2, 2))  # 1.5 fine pixels per coarse pixel
    np.testing.assert_allclose(frac.sum(0), 1.0, atol=1e-6)
    # top-left coarse pixel: fine (0,0) whole, (0,1) and (1,0) half, (1,1) a quarter
    np.testing.assert_allclose(frac[:, 0, 0], [1.5 / 2.25, 0.75 / 2.25, 0.0], atol=1e-6)
    # an integer ratio is the block mean
    np.testing.assert_allclose(
        world.class_fractions(np.repeat(labels, 2, 0)[:, [0, 0, 1, 1, 2, 2]], 3, (3, 3)),
        world.class_fractions(labels, 3, (3, 3)),
    )
