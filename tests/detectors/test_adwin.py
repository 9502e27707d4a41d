"""detectors.adwin against figures River 0.26.1's Rust ADWIN (``river._river_rust``)
produced for the same streams, written down here so the test needs no private River
module: every cut and the window's sums, bit for bit."""

import random

import pytest

from detectors.adwin import AdaptiveWindow
from detectors.errors import SnapshotError


def stream(seed: int, n: int) -> list[float]:
    # Values in [0, 1] whose level drops to 60 % every other 1500 values.
    rng = random.Random(seed)
    return [rng.random() * (0.6 if (i // 1500) % 2 else 1.0) for i in range(n)]


# River: AdaptiveWindowing(delta=0.002, clock=32, max_buckets=5, min_window_length=5,
# grace_period=10) fed stream(7, 6000): the indices where update returned True, then
# get_width(), get_total() and get_variance() as float.hex().
CUTS = [1631, 1663, 1919, 3071, 3103, 3135, 3295, 4671, 4703, 4735, 4831, 5055]
END = ("0x1.7c00000000000p+10", "0x1.cf153ccef2a45p+8", "0x1.79e3abfa45653p+5")

# River: AdaptiveWindowing(delta=0.01, clock=8, ...) fed stream(8, 700), then
# base64(__getstate__()); then fed stream(9, 3000).
RIVER_STATE = (
    "exSuR+F6hD8IAAAABQAAAAAAAAAAAAAAAAAUQAAAAAAAACRAkvphIHufdkB2g39rwe5LQAAAAAAA4IVAAAAAADDz"
    "DUFaBQAAVAUAALwCAAAAAAAACAAAAAAAAAAFAAAAAAAAAAQAAAAAAAAABgAAAAAAAAC0HW2kuOfSP/x90NRDA8I/"
    "oTQsFixk7D9bLdRwMDnjPwAAAAAAAAAAAAAAAAAAAAAGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAUAAAAAAAAABAAAAAAAAAAGAAAAAAAAAKGwbqsv0O0/ijRmA/2i0j8noB4o"
    "U7X1Pw5/MbUI0fY/AAAAAAAAAAAAAAAAAAAAAAYAAAAAAAAArVWEoqffqj9Gjid2e/mfP1WR58jYNKc/UWf8DA9w"
    "kD8AAAAAAAAAAAAAAAAAAAAABQAAAAAAAAAEAAAAAAAAAAYAAAAAAAAA0OxDpmAb8j/6qhy2M54CQM56H5O1mAJA"
    "ztChqF36CkAAAAAAAAAAAAAAAAAAAAAABgAAAAAAAACcs4w5VkmyP8HPyxLSIeI/vdKkwjh+0z8JIBSnIQm3PwAA"
    "AAAAAAAAAAAAAAAAAAAFAAAAAAAAAAQAAAAAAAAABgAAAAAAAADpYfI7I6ISQB3FQkgcYgxAkI5XfEjxEUCa3ATX"
    "5H0SQAAAAAAAAAAAAAAAAAAAAAAGAAAAAAAAAKU3SFbYFN0/EU0FdWRT7D+DY7/4dTzmP++jBrBv8uc/AAAAAAAA"
    "AAAAAAAAAAAAAAUAAAAAAAAABAAAAAAAAAAGAAAAAAAAANrnP5alLxhAEt/K2542HkCU976NEQckQFD6s1yMDx9A"
    "AAAAAAAAAAAAAAAAAAAAAAYAAAAAAAAAH+VY5br/5z8RTzIFtKvuP285VkA0Cfk/lyGshOmJ9T8AAAAAAAAAAAAA"
    "AAAAAAAABQAAAAAAAAAEAAAAAAAAAAYAAAAAAAAAWh+vhfzUMEAjakpXf4MxQK4wkB4eFDNATKllVvuxLUAAAAAA"
    "AAAAAAAAAAAAAAAABgAAAAAAAADoVsbZsjMBQGtPQjMYfAFAuAJiJIZH+z/HdZhWjTQAQAAAAAAAAAAAAAAAAAAA"
    "AAAFAAAAAAAAAAUAAAAAAAAABgAAAAAAAAAmFGs+puxBQFKXaRZhfEFAHw46Lax3QUBQk1yoYAhAQK7de2ISe0BA"
    "AAAAAAAAAAAGAAAAAAAAAJVcxH7tYhJASX9u7WNWE0AqDmSu+yIVQAmPS57VAhJA/7o3a4huFkAAAAAAAAAAAAUA"
    "AAAAAAAAAQAAAAAAAAAGAAAAAAAAADIT7BsrkU1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAYAAAAAAAAAdPAyI1axJkAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAexSuR+F6"
    "hD8IAAAABQAAAAAAAAAFAAAACgAAAA=="
)
CONT_CUTS = [1595, 1603, 1611, 1635, 1651, 1675]
CONT_END = ("0x1.8500000000000p+10", "0x1.dab5d10eaa1d7p+8", "0x1.a2fa77db657c7p+5")


def sums(adwin: AdaptiveWindow) -> tuple[str, str, str]:
    return (adwin.width.hex(), adwin.total.hex(), adwin.variance.hex())


def test_cuts_and_sums_match_river() -> None:
    adwin = AdaptiveWindow(delta=0.002, clock=32)
    assert [i for i, x in enumerate(stream(7, 6000)) if adwin.update(x)] == CUTS
    assert sums(adwin) == END


@pytest.mark.parametrize("chunk", [1, 7, 32, 125])
def test_update_many_is_update_on_each(chunk: int) -> None:
    values = stream(7, 6000)
    one = AdaptiveWindow(delta=0.002, clock=32)
    many = AdaptiveWindow(delta=0.002, clock=32)
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        assert many.update_many(block) == any([one.update(x) for x in block])
    assert many.state() == one.state()
    assert sums(many) == END


def test_state_round_trip_continues_bit_for_bit() -> None:
    values = stream(7, 6000)
    whole = AdaptiveWindow(delta=0.002, clock=32)
    cuts = [i for i, x in enumerate(values) if whole.update(x)]
    first = AdaptiveWindow(delta=0.002, clock=32)
    resumed_cuts = [i for i, x in enumerate(values[:2500]) if first.update(x)]
    resumed = AdaptiveWindow(delta=0.002, clock=32)
    resumed.load(first.state())
    resumed_cuts += [2500 + i for i, x in enumerate(values[2500:]) if resumed.update(x)]
    assert resumed_cuts == cuts
    assert resumed.state() == whole.state()


def test_reads_rivers_serialized_state() -> None:
    """Snapshots taken while NumericDrift used River's object hold its bytes (base64)."""
    adwin = AdaptiveWindow(delta=0.01, clock=8)
    adwin.load(RIVER_STATE)
    assert [i for i, x in enumerate(stream(9, 3000)) if adwin.update(x)] == CONT_CUTS
    assert sums(adwin) == CONT_END


def test_refuses_a_truncated_river_state() -> None:
    with pytest.raises(SnapshotError, match="not a River ADWIN state"):
        AdaptiveWindow().load(RIVER_STATE[:-8])
