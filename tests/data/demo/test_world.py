"""The synthetic world: planted band groups, twin phenology, parcels, clouds, speckle."""

import numpy as np

from maestro.data.demo import world


def test_twins_share_signature_but_not_timing():
    phen = world.class_phenologies(6, 3, np.random.default_rng(0), sensor="s2")
    a, b = phen[2], phen[3]
    np.testing.assert_array_equal(a.base, b.base)
    np.testing.assert_array_equal(a.spectral, b.spectral)
    assert abs((b.peak_doy - a.peak_doy) % 365.25 - 120) < 1e-9
    days = np.arange(1, 366)
    bands = list(world.LATENT_GROUPS["s2"])
    np.testing.assert_allclose(a.level(days).mean(0), b.level(days).mean(0), atol=1e-3)
    sa, sb = a.spectral_at(days, bands), b.spectral_at(days, bands)
    np.testing.assert_allclose(sa.mean(0), sb.mean(0), atol=1e-3)  # same annual shape
    assert np.abs(sa - sb).max() > 0.05  # ... but at different times of the year
    # the shape bends the bands inside a group only: zero mean in every latent group
    groups = np.array(list(world.LATENT_GROUPS["s2"].values()))
    for g in np.unique(groups):
        np.testing.assert_allclose(sa[:, groups == g].sum(1), 0.0, atol=1e-12)


def test_acquisition_gains_stay_in_range():
    g = world.acquisition_gains((20_000,), np.random.default_rng(4))
    lo, hi = np.exp(world.ACQUISITION_GAIN_STD * np.array(world.ACQUISITION_GAIN_RANGE))
    assert g.min() >= lo - 1e-12 and g.max() <= hi + 1e-12
    assert 0.3 < np.log(g).std() < 0.7  # a strong nuisance on absolute levels


def test_rows_continue_inside_a_parcel():
    rows = world.Texture(np.array([4.0]), np.array([0.0]), np.array([[0.2]]))
    labels = np.zeros((8, 16), dtype=np.int64)
    cells = np.zeros_like(labels)
    cells[:, 8:] = 1  # two parcels of the same class
    tex = rows.render(labels, cells, 1.0, np.random.default_rng(6))[0]
    np.testing.assert_allclose(tex[:, :4], tex[:, 4:8])  # period 4 px, rows along y
    np.testing.assert_allclose(tex[0], tex[5])
    assert abs(tex.mean() - 1.0) < 0.05 and tex.max() <= 1.2 + 1e-9
    assert not np.allclose(tex[:, 8:12], tex[:, :4])  # the other parcel has its own phase
    twins = world.Texture.draw(4, 2, np.random.default_rng(7))
    np.testing.assert_array_equal(twins.period_m[0], twins.period_m[1])  # twins share rows


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
