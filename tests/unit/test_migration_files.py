from pathlib import Path

import pytest

from gavel.migrations import MigrationError, discover


def test_shipped_migrations_are_numbered_in_order() -> None:
    versions = [m.version for m in discover()]
    assert versions == sorted(versions)
    assert versions[0] == 1


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "2-bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"2-bad\.sql"):
        discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="duplicate"):
        discover(tmp_path)


def test_checksum_follows_the_text(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    first = discover(tmp_path)[0].checksum
    (tmp_path / "0001_a.sql").write_text("SELECT 2;")
    assert discover(tmp_path)[0].checksum != first
