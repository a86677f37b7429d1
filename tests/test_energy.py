"""Chip energy models (golden/energy/estimate.py, golden/energy/chips/*.yaml): schema rejections that name file and field, exact
energies recomputed independently from the YAML, per-layer sums, and explicit 'no figure' terms."""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import yaml

from golden.core.counters import COUNTER_NAMES
from golden.core.cycle_model import C_IMAGE
from golden.core.errors import SnnCosimError
from golden.core.trace import Trace
from golden.energy import estimate as E

SHIPPED = {"cmos45nm", "cmos45nm_int32", "loihi", "truenorth", "spinnaker", "spinnaker2"}


def _prov(**kw):
    return {"source": "ref1", "where": "Table 9", "evidence": "measured", "verified": False, **kw}


def _user_model() -> dict:
    """A valid per-op model with static power and a clock (numbers made up for the test only)."""
    return {
        "format": "snncosim-chip-model", "version": 1, "name": "testchip", "title": "Test chip", "scope": "per_op",
        "references": {"ref1": "A. Author, A test reference, 2024"},
        "terms": {
            "ac": {"value": 0.7, "unit": "pJ", **_prov()},
            "mac": {"value": 2.3, "unit": "pJ", **_prov()},
            "neuron_update": {"value": 1.1, "unit": "pJ", **_prov()},
            "spike": {"value": 0.013, "unit": "nJ", **_prov()},
            "weight_read": {"value": 5.5, "unit": "pJ", "per_bits": 32, **_prov()},
            "state_read": {"value": 4.25, "unit": "pJ", "per_bits": 64, **_prov()},
            "state_write": {"included_in": "neuron_update", "reason": "written in the same cycle"},
        },
        "static_power": {"value": 3.5, "unit": "mW", **_prov()},
        "clock": {"value": 250, "unit": "MHz", **_prov()},
    }


def _write(tmp_path, model: dict, name: str = "user.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(model, sort_keys=False))
    return path


def _reject(tmp_path, model: dict, *needles: str) -> str:
    path = _write(tmp_path, model)
    with pytest.raises(E.ChipModelError) as exc:
        E.load_chip(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# --------------------------------------------------------------------------------------------- shipped models
def test_every_shipped_model_loads_with_citations():
    assert set(E.shipped_chip_names()) == SHIPPED
    for model in E.load_chips():
        assert model.shipped and model.name in SHIPPED and model.references
        for term in E.TERMS + E.SETTINGS:
            p = model.prices[term]
            assert p.status in E.STATUSES
            if p.status == "value":
                assert p.source and p.citation and p.evidence in E.EVIDENCE and p.value >= 0
            else:
                assert p.reason, (model.name, term)


def test_shipped_numbers_are_the_cited_ones():
    pj = lambda name, term: E.load_chip(name).prices[term].value  # noqa: E731
    assert pj("cmos45nm", "ac") == Fraction("0.1") and pj("cmos45nm", "mac") == Fraction("0.3")
    assert pj("cmos45nm_int32", "mac") == Fraction("3.2")  # Sengupta 2019's 32x convention
    assert pj("cmos45nm", "weight_read") == 10 and E.load_chip("cmos45nm").prices["weight_read"].per_bits == 64
    assert pj("loihi", "ac") == Fraction("23.6") and pj("loihi", "neuron_update") == 81
    assert pj("loihi", "spike") == Fraction("1.7")
    assert pj("truenorth", "ac") == 26 and E.load_chip("truenorth").scope == "all_in"
    assert pj("spinnaker", "ac") == 13300 and pj("spinnaker", "neuron_update") == 26000
    assert pj("spinnaker2", "ac") == 450 and pj("spinnaker2", "neuron_update") == 2190


def test_all_in_model_prices_only_synaptic_events():
    tn = E.load_chip("truenorth")
    assert tn.all_in_term == "ac"
    assert all(tn.prices[t].status in ("included", "not_applicable") for t in E.TERMS if t != "ac")
    assert tn.prices["static_power"].status == "included"


def test_unknown_shipped_name_and_missing_file(tmp_path):
    with pytest.raises(E.ChipModelError, match="no shipped chip model 'loihi3'"):
        E.load_chip("loihi3")
    with pytest.raises(E.ChipModelError, match="no such chip-model file"):
        E.load_chip(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------------------------- schema
def test_user_model_loads_exactly(tmp_path):
    model = E.load_chip(_write(tmp_path, _user_model()))
    assert not model.shipped and model.name == "testchip"
    assert model.prices["ac"].value == Fraction(7, 10)  # the decimal text, not the binary float
    assert model.prices["spike"].value == 13  # 0.013 nJ in pJ
    assert model.prices["static_power"].value == Fraction(7, 2)  # mW
    assert model.prices["clock"].value == 250  # MHz


def test_rejects_missing_term(tmp_path):
    m = _user_model()
    del m["terms"]["neuron_update"]
    _reject(tmp_path, m, "terms.neuron_update: missing")


def test_rejects_missing_static_power(tmp_path):
    m = _user_model()
    del m["static_power"]
    _reject(tmp_path, m, "static_power: missing")


def test_rejects_negative_number(tmp_path):
    m = _user_model()
    m["terms"]["ac"]["value"] = -0.7
    _reject(tmp_path, m, "terms.ac.value: must not be negative")


def test_rejects_unitless_number(tmp_path):
    m = _user_model()
    m["terms"]["spike"] = 1.7
    _reject(tmp_path, m, "terms.spike:", "no unit")
    m = _user_model()
    del m["terms"]["mac"]["unit"]
    _reject(tmp_path, m, "terms.mac.unit: missing")
    m = _user_model()
    m["clock"] = 100
    _reject(tmp_path, m, "clock:", "no unit")


def test_rejects_unknown_unit(tmp_path):
    m = _user_model()
    m["terms"]["ac"]["unit"] = "pJoule"
    _reject(tmp_path, m, "terms.ac.unit: unknown energy unit 'pJoule'")
    m = _user_model()
    m["static_power"]["unit"] = "pJ"
    _reject(tmp_path, m, "static_power.unit: unknown power unit 'pJ'")


def test_rejects_number_as_text(tmp_path):
    m = _user_model()
    m["terms"]["ac"]["value"] = "0.7 pJ"
    _reject(tmp_path, m, "terms.ac.value: must be a number")


def test_rejects_all_in_combined_with_per_term(tmp_path):
    m = _user_model()
    m["scope"] = "all_in"
    m["static_power"] = {"included_in": "ac", "reason": "all in"}
    m["clock"] = {"not_applicable": "asynchronous"}
    _reject(tmp_path, m, "terms.mac: a per-term value cannot be combined with the all-in figure terms.ac")
    # the all-in figure alone is fine ...
    for t in E.TERMS[1:]:
        m["terms"][t] = {"included_in": "ac", "reason": "all in"}
    E.load_chip(_write(tmp_path, m, "ok.yaml"))
    # ... but not with a static power on top
    m["static_power"] = {"value": 1, "unit": "mW", **_prov()}
    m["clock"] = {"value": 1, "unit": "MHz", **_prov()}
    _reject(tmp_path, m, "static_power: a static power cannot be combined with the all-in figure")


def test_rejects_missing_citation(tmp_path):
    m = _user_model()
    del m["terms"]["ac"]["source"]
    _reject(tmp_path, m, "terms.ac.source: missing")
    m = _user_model()
    m["terms"]["ac"]["source"] = "ref2"
    _reject(tmp_path, m, "terms.ac.source: reference 'ref2' is not listed")
    m = _user_model()
    del m["terms"]["ac"]["verified"]
    _reject(tmp_path, m, "terms.ac.verified: missing")
    m = _user_model()
    m["terms"]["ac"]["evidence"] = "rumour"
    _reject(tmp_path, m, "terms.ac.evidence: must be one of")


def test_rejects_no_figure_without_reason(tmp_path):
    m = _user_model()
    m["terms"]["mac"] = {"not_applicable": ""}
    _reject(tmp_path, m, "terms.mac.not_applicable: needs the reason")
    m["terms"]["mac"] = {"not_available": "no source", "value": 1}
    _reject(tmp_path, m, "terms.mac.value: cannot be combined with not_available")


def test_rejects_static_power_without_clock(tmp_path):
    m = _user_model()
    m["clock"] = {"not_available": "unknown"}
    _reject(tmp_path, m, "clock: static_power has a value")


def test_rejects_memory_price_without_width(tmp_path):
    m = _user_model()
    del m["terms"]["weight_read"]["per_bits"]
    _reject(tmp_path, m, "terms.weight_read.per_bits: missing")


def test_rejects_bad_included_in_and_unknown_fields(tmp_path):
    m = _user_model()
    m["terms"]["state_write"]["included_in"] = "magic"
    _reject(tmp_path, m, "terms.state_write.included_in: must name another priced term")
    m = _user_model()
    m["terms"]["ac"]["colour"] = "red"
    _reject(tmp_path, m, "terms.ac.colour: unknown field")
    m = _user_model()
    m["terms"]["routing"] = m["terms"]["ac"]
    _reject(tmp_path, m, "terms.routing: unknown term")


def test_rejects_wrong_format_and_bad_yaml(tmp_path):
    m = _user_model()
    m["version"] = 7
    _reject(tmp_path, m, "version: version 7 is not supported")
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(E.ChipModelError, match="broken.yaml: not valid YAML"):
        E.load_chip(path)


def test_rejects_duplicate_names(tmp_path):
    m = _user_model()
    m["name"] = "loihi"
    path = _write(tmp_path, m)
    with pytest.raises(E.ChipModelError, match="name 'loihi' is already used"):
        E.load_chips(["loihi", path])


# --------------------------------------------------------------------------------------------- energy
def _hand_trace(seed: int = 0, n_images: int = 3, steps: int = 5, layers: int = 2, macs: bool = False) -> Trace:
    """A Trace with arbitrary (not simulated) counters: the energy is a function of counts only."""
    rng = np.random.default_rng(seed)
    counters = rng.integers(0, 1000, (n_images, steps, layers, len(COUNTER_NAMES))).astype(np.int64)
    if not macs:
        counters[..., COUNTER_NAMES.index("macs")] = 0
    spikes = [np.zeros((n_images, steps, n), bool) for n in (7, 3)[:layers]]
    image_cycles = counters[..., 0].sum(axis=(1, 2)) + C_IMAGE
    return Trace(spikes=spikes, counters=counters, image_cycles=image_cycles.astype(np.int64),
                 predictions=np.zeros(n_images, np.int64), meta={"lanes": 8})


def _dec(text) -> Fraction:
    """Independent exact reading of a YAML number: via its text and Decimal, not golden.energy.estimate's loader."""
    return Fraction(Decimal(str(text)))


def test_energy_recomputed_independently_from_yaml(tmp_path):
    path = _write(tmp_path, _user_model())
    raw = yaml.safe_load(path.read_text())  # plain floats; re-read through their shortest text
    trace = _hand_trace(macs=True)
    geometry = E.WordWidths(lanes=8, weight_bits=8, membrane_bits=24)
    got = E.snn_energy(trace, E.load_chip(path), geometry)

    tot = {name: int(trace.counters[..., k].sum()) for k, name in enumerate(COUNTER_NAMES)}
    t = raw["terms"]
    pj = {
        "ac": _dec(t["ac"]["value"]), "mac": _dec(t["mac"]["value"]),
        "neuron_update": _dec(t["neuron_update"]["value"]),
        "spike": _dec(t["spike"]["value"]) * 1000,  # nJ
        "weight_read": _dec(t["weight_read"]["value"]), "state_read": _dec(t["state_read"]["value"]),
    }
    weight_accesses = -(-8 * 8 // 32)  # a 64-bit weight word = 2 accesses of 32 bits
    state_accesses = -(-8 * 24 // 64)  # a 192-bit membrane word = 3 accesses of 64 bits
    dynamic = (tot["acs"] * pj["ac"] + tot["macs"] * pj["mac"] + tot["neuron_updates"] * pj["neuron_update"]
               + tot["spikes"] * pj["spike"] + tot["weight_reads"] * weight_accesses * pj["weight_read"]
               + tot["state_reads"] * state_accesses * pj["state_read"])  # state_write: inside neuron_update
    seconds = Fraction(int(trace.image_cycles.sum())) / (_dec(raw["clock"]["value"]) * 10**6)
    static = _dec(raw["static_power"]["value"]) / 1000 * seconds * 10**12  # W·s → pJ
    assert got.dynamic_pj == dynamic
    assert got.static_pj == static
    assert got.total_pj == dynamic + static
    assert got.per_image_pj == (dynamic + static) / 3
    assert got.to_dict()["total_pj"] == float(dynamic + static)  # the float is the correctly rounded exact value
    assert got.to_dict()["total_pj_exact"] == str(dynamic + static)
    assert got.included == (("state_write", "neuron_update"),) and got.excluded == ()


def test_loihi_energy_of_hand_trace_is_exact():
    trace = _hand_trace(seed=3)
    tot = trace.totals()
    got = E.snn_energy(trace, E.load_chip("loihi"), E.WordWidths(8, 8, 24))
    expected = tot["acs"] * Fraction("23.6") + tot["neuron_updates"] * 81 + tot["spikes"] * Fraction("1.7")
    assert got.total_pj == got.dynamic_pj == expected
    assert got.static_pj is None and ("static", E.load_chip("loihi").prices["static_power"].reason) in got.excluded
    assert {t for t, _ in got.included} == {"weight_read", "state_read", "state_write"}


def test_cmos45nm_memory_words_become_64_bit_accesses():
    trace = _hand_trace(seed=4)
    tot = trace.totals()
    chip = E.load_chip("cmos45nm")
    for lanes, w_acc, s_acc in ((8, 1, 3), (16, 2, 6), (4, 1, 2)):
        got = E.snn_energy(trace, chip, E.WordWidths(lanes, 8, 24))
        assert got.term("weight_read") == tot["weight_reads"] * w_acc * 10
        assert got.term("state_read") == tot["state_reads"] * s_acc * 10
        assert got.term("state_write") == tot["state_writes"] * s_acc * 10
        assert got.term("ac") == tot["acs"] * Fraction("0.1")
        assert got.term("neuron_update") == tot["neuron_updates"] * Fraction("0.2")


def test_per_layer_energies_sum_to_the_total(tmp_path):
    trace = _hand_trace(seed=5, layers=2)
    for chip in E.load_chips() + [E.load_chip(_write(tmp_path, _user_model()))]:
        got = E.snn_energy(trace, chip, E.WordWidths(8, 8, 24))
        layers = sum((got.layer_total(i) for i in range(2)), Fraction(0))
        assert layers + (got.overhead_static or 0) == got.total_pj, chip.name
        for term in E.TERMS:
            assert sum((row[term] for row in got.per_layer), Fraction(0)) == got.term(term)


def test_overhead_cycles_are_c_image_per_image():
    trace = _hand_trace(n_images=4)
    counts = E.Counts.from_trace(trace)
    assert counts.overhead_cycles == 4 * C_IMAGE
    assert counts.total_cycles == int(trace.image_cycles.sum())
    totals = E.Counts.from_totals(trace.totals(), 4, 4 * C_IMAGE)
    chip = E.load_chip("cmos45nm")
    assert E.snn_energy(totals, chip, E.WordWidths(8, 8, 24)).total_pj == \
        E.snn_energy(counts, chip, E.WordWidths(8, 8, 24)).total_pj


def test_term_without_figure_raises_only_for_nonzero_counts():
    loihi = E.load_chip("loihi")
    E.snn_energy(_hand_trace(macs=False), loihi, E.WordWidths(8, 8, 24))  # no MACs: fine
    with pytest.raises(E.EnergyTermError, match="need the term 'mac', which the model marks not applicable") as exc:
        E.snn_energy(_hand_trace(macs=True), loihi, E.WordWidths(8, 8, 24))
    assert exc.value.term == "mac" and exc.value.short == "mac not applicable"
    with pytest.raises(E.EnergyTermError, match="not available"):
        E.ann_energy([100], E.load_chip("spinnaker"), 8)


def test_excluded_terms_are_listed_not_hidden():
    got = E.snn_energy(_hand_trace(seed=6), E.load_chip("spinnaker2"), E.WordWidths(8, 8, 24))
    assert [t for t, _ in got.excluded] == ["spike", "static"]
    assert got.term("spike") == 0


def test_ann_energy_macs_and_packed_weight_reads():
    chip = E.load_chip("cmos45nm")
    macs = [200704, 2560, 3]
    got = E.ann_energy(macs, chip, weight_bits=8, images=2)
    reads = sum(-(-m * 8 // 64) for m in macs)
    assert got.term("mac") == 2 * sum(macs) * Fraction("0.3")
    assert got.term("weight_read") == 2 * reads * 10
    assert got.per_image_pj == sum(macs) * Fraction("0.3") + reads * 10
    with pytest.raises(E.EnergyTermError):
        E.ann_energy(macs, E.load_chip("truenorth"), 8)


def test_compare_chips_records_reasons_instead_of_raising():
    trace = _hand_trace(seed=7)
    comps = E.compare_chips(trace, [50, 20], E.load_chips(), E.WordWidths(8, 8, 24))
    by = {c.chip.name: c for c in comps}
    assert set(by) == SHIPPED
    assert all(c.snn is not None for c in comps)
    assert by["cmos45nm"].ann is not None and by["cmos45nm"].ann_over_snn is not None
    assert by["loihi"].ann is None and by["loihi"].ann_unavailable_short == "mac not applicable"
    assert by["truenorth"].ann is None


def test_ac_per_mac_ratio_is_exact():
    trace = _hand_trace(seed=8, n_images=3)
    counts = E.Counts.from_trace(trace)
    assert E.ac_per_mac(counts, [40, 10]) == Fraction(trace.totals()["acs"], 3 * 50)


def test_counts_reject_nonsense():
    with pytest.raises(SnnCosimError):
        E.Counts(((1,) * len(COUNTER_NAMES),), images=0)
    with pytest.raises(SnnCosimError, match="lack"):
        E.Counts.from_totals({"acs": 1}, 1)


def test_fmt_energy():
    assert E.fmt_energy(Fraction(12345, 10)) == "1.23 nJ"
    assert E.fmt_energy(0.5) == "0.5 pJ"
    assert E.fmt_energy(None) == "n/a"


def test_model_is_not_mutated_by_copying(tmp_path):
    # deep copies of the dict template stay valid (guards the fixtures above)
    m = copy.deepcopy(_user_model())
    assert E.load_chip(_write(tmp_path, m)).name == "testchip"
