from worker.loaded_versions import LoadedVersions


def test_inherited_versions_are_oldest_untrusted_and_removed_runner_first() -> None:
    loaded = LoadedVersions()
    loaded.add(7, ("gavel/run/pv7", "gavel/pv7/p0"))
    inherited = loaded.inherit([
        "gavel/pv3/p1", "gavel/pv3/p0", "gavel/run/pv3", "gavel/pv12/p0",
        "gavel/pv7/p0",  # already this worker's
        "gavel/check/c0123abcd/p0", "gavel/run/pv3x", "acme/policy", "gavel/pv4",
    ])
    assert inherited == 2
    assert loaded.ids() == [3, 12, 7]
    assert 3 not in loaded and 12 not in loaded and 7 in loaded
    assert loaded.pop_oldest() == (3, ("gavel/run/pv3", "gavel/pv3/p0", "gavel/pv3/p1"))
    assert loaded.discard(12) == ("gavel/pv12/p0",)
    assert loaded.ids() == [7] and len(loaded) == 1


def test_least_recently_used_first() -> None:
    loaded = LoadedVersions()
    for version_id in (1, 2, 3):
        loaded.add(version_id, (f"gavel/run/pv{version_id}",))
    loaded.touch(1)
    assert loaded.pop_oldest() == (2, ("gavel/run/pv2",))
    loaded.put_back_oldest(2, ("gavel/run/pv2",))
    assert loaded.ids() == [2, 3, 1]
