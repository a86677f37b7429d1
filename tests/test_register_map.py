"""The one register map (golden/core/register_map.py): the packer of the configuration image and the hardware's
params-word struct read the same bits."""

import itertools

import pytest

from golden.core import register_map as R
from golden.core.errors import UnsupportedLayerError
from golden.core.network import NeuronParams
from hw.neuron import NeuronControl


@pytest.mark.parametrize("kind, reset, leak_shift, floor, floor_threshold, inhibit", [
    (kind, reset, shift, floor, ft, inh)
    for kind, reset, shift, floor, ft, inh in itertools.product(
        ("if", "lif", "ws", "acc"), ("zero", "subtract"), (0, 5, 63), (None, -7), (False, True), (False, True))
    if not (floor is not None and ft) and (kind == "lif" or shift == 0) and not (kind in ("ws", "acc") and (ft or inh))
])
def test_params_word_decodes_in_the_hardware_struct(kind, reset, leak_shift, floor, floor_threshold, inhibit):
    neuron = NeuronParams(kind=kind, reset=reset, leak_shift=leak_shift, floor=floor, floor_threshold=floor_threshold)
    word = R.params_word(neuron, inhibit)
    assert 0 <= word < 1 << R.PARAM_BITS
    fields = NeuronControl.from_bits(word)
    assert (fields.lif, fields.subtract, fields.leak_shift) == (kind == "lif", reset == "subtract", leak_shift)
    assert (fields.floor_en, fields.floor_theta, fields.inhibit) == (floor is not None, floor_threshold, inhibit)
    assert (fields.ws, fields.acc) == (kind == "ws", kind == "acc")


def test_addresses_and_fs_weight_codes():
    assert R.region_address(1, R.WEIGHTS, 5) == 5
    assert R.region_address(3, R.PARAMS, R.INHIBIT_BASE + 2) == (4 * 2 + 3) << 24 | 0x402
    assert R.global_address(R.GLOBAL_FS_MODE) == 0xFF000002
    assert R.MAX_LAYERS * 4 <= R.GLOBAL_REGION
    assert [R.fs_weight_code(d) for d in (1, 2, -1, -8, 2 ** 20)] == [0, 1, 64, 64 | 3, 20]
    for bad in (0, 3, -6, 2 ** 64):
        with pytest.raises(UnsupportedLayerError):
            R.fs_weight_code(bad)
