"""A profile's numbers are board facts within plausible bounds: a typo (GB for MB, MHz for
GHz, 0 or 10^6 cores, a throttle temperature of 5 or 900 °C) is refused with file and field."""

from __future__ import annotations

import pytest

from edgecomp import paths
from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.hardware.profiles import load_profile_file, load_profiles

BASE = (paths.shipped("profiles") / "pi4.toml").read_text()


@pytest.mark.parametrize("old, new, field", [
    ("count = 4", "count = 0", "cpu.clusters[0].count: must be greater than or equal to 1"),
    ("count = 4", "count = 1000000", "cpu.clusters[0].count: must be less than or equal"),
    ("max_mhz = 1800", "max_mhz = 1800000", "cpu.clusters[0].max_mhz: must be less than"),
    ("ram_mb = 4096", "ram_mb = 4", "ram_mb: must be greater than or equal to 16"),
    ("ram_mb = 4096", "ram_mb = 4096000000", "ram_mb: must be less than or equal"),
    ("preferred_channel_multiple = 8", "preferred_channel_multiple = 0",
     "preferred_channel_multiple: must be greater than or equal to 1"),
    ("throttle_c = 80.0", "throttle_c = 0.0", "thermal.throttle_c: must be greater than"),
    ("throttle_c = 80.0", "throttle_c = 900.0", "thermal.throttle_c: must be less than"),
    ("throttle_c = 80.0", "throttle_c = nan", "thermal.throttle_c: must be"),
])
def test_a_number_outside_its_range_is_refused(tmp_path, old, new, field):
    assert old in BASE
    path = tmp_path / "odd.toml"
    path.write_text(BASE.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_profile_file(path)
    assert str(err.value).startswith(f"{path}: {field}")


def test_every_shipped_profile_is_within_the_ranges():
    assert len(load_profiles()) >= 7


def test_a_user_profile_out_of_range_stops_the_plan(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGECOMP_PROFILES", str(tmp_path))
    (tmp_path / "pi4.toml").write_text(BASE.replace("throttle_c = 80.0", "throttle_c = -40.0"))
    code = main(["profiles", "show", "pi4"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "Traceback" not in err
    assert "pi4.toml: thermal.throttle_c: must be greater than or equal to 20" in err
