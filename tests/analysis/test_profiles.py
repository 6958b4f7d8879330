"""Hardware profiles: every number has a unit, a source and a kind; a bad profile is one line naming the field."""
import pytest
import yaml

from spikformer_deploy.analysis import ProfileError, builtin_profiles, load_profile
from spikformer_deploy.analysis.profiles import KINDS, PROFILE_DIR


@pytest.mark.parametrize("name", builtin_profiles())
def test_builtin_profiles_are_complete(name):
    p = load_profile(name)
    assert p.constants and p.title
    for key, c in p.constants.items():
        assert c.kind in KINDS and c.source.strip() and c.unit, key
        if c.low is not None:
            assert c.low <= c.value <= c.high, key
    if name == "loihi2":  # fitted on the measured runs; what is published or assumed says so
        kinds = {k: c.kind for k, c in p.constants.items()}
        assert kinds["e_synop"] == kinds["t_synop"] == kinds["e_neuron_active"] == kinds["t_interchip_bit"] == \
            "calibrated" and kinds["static_power_chip"] == "measured"
        assert kinds["t_neuron"] == kinds["t_barrier"] == "published" and kinds["e_interchip_bit"] == "assumption"
        assert all(p.constants[k].low is not None for k in ("e_synop", "t_synop", "static_power_chip", "e_host_op",
                                                            "t_embedded_op", "e_interchip_bit"))
        assert len(p.fitted_on) >= 8
    if name == "loihi":  # Loihi 1's static power: measured (Blouw et al. 2019), no longer a guess
        assert p.constants["static_power_chip"].kind == "measured" and p.constants["static_power_chip"].low


def write(tmp_path, data):
    path = tmp_path / "custom.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def base():
    return yaml.safe_load((PROFILE_DIR / "cmos45nm.yaml").read_text())


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["constants"]["e_ac"].pop("source"), "constants.e_ac: missing 'source'"),
    (lambda d: d["constants"]["e_mac"].pop("unit"), "constants.e_mac: missing 'unit'"),
    (lambda d: d["constants"]["e_ac"].update(kind="guess"), "constants.e_ac.kind"),
    (lambda d: d["constants"]["e_ac"].update(unit="furlongs"), "constants.e_ac.unit: unknown unit"),
    (lambda d: d["constants"]["e_ac"].update(unit="ns"), "constants.e_ac.unit: ns is not a unit of J"),
    (lambda d: d["constants"]["e_ac"].update(value="cheap"), "constants.e_ac.value"),
    (lambda d: d["constants"]["e_ac"].update(value=-1), "constants.e_ac.value"),
    (lambda d: d["constants"].pop("e_mac"), "constants.e_mac: missing"),
    (lambda d: d.update(model="quantum"), "model: unknown"),
    (lambda d: d.pop("constants"), "missing 'constants'"),
    (lambda d: d["constants"]["e_ac"].update(low=0.5), "give both 'low' and 'high'"),
    (lambda d: d["constants"]["e_ac"].update(low=0.95, high=2.0), "outside its range"),
    (lambda d: d["constants"]["e_ac"].update(low="x", high=2.0), "constants.e_ac.low"),
])
def test_bad_profiles_name_the_field(tmp_path, edit, needle):
    data = base()
    edit(data)
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, data))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unreadable_and_unknown_profiles(tmp_path):
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(write(tmp_path, "name: [unclosed"))
    with pytest.raises(ProfileError, match="unknown profile 'tpu'"):
        load_profile("tpu")
    custom = base()
    custom["name"] = "mine"
    assert load_profile(write(tmp_path, custom)).name == "mine"
