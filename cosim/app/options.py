"""The options of the main job (``snncosim run``): defaults and checks in one place, torch-free, so that a bad
option is refused at once, before anything is imported, built or written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from golden.conversion import DEFAULT_NEURON
from golden.core.errors import SnnCosimError
from golden.core.network import NeuronParams
from golden.data import TEST_PART_SIZE

__all__ = ["CODINGS", "DEFAULT_PHASES", "DEFAULT_STEPS", "JobOptions"]


CODINGS = ("rate", "weighted", "fs")
DEFAULT_STEPS = {"rate": 64, "weighted": 32, "fs": None}  # fs: one image takes exactly L·K steps
DEFAULT_PHASES = {"rate": 0, "weighted": 4, "fs": 8}


FULL_TRACE_AUTO_IMAGES = 100  # default check: full traces up to this many RTL images, per-image digests beyond


@dataclass
class JobOptions:
    coding: str = "rate"
    steps: int | None = None  # None: DEFAULT_STEPS[coding]
    phases: int | None = None  # None: DEFAULT_PHASES[coding]
    skip_periods: int = 0
    rtl_images: int = 20
    test_images: int | None = None  # None: the whole test part
    lanes: int = 8
    neuron: str = DEFAULT_NEURON.kind
    reset: str = DEFAULT_NEURON.reset  # the API's default too (golden.conversion.DEFAULT_NEURON)
    leak_shift: int = 4
    norm: str = "data"
    percentile: float = 99.9
    max_rate: float = 1.0
    weight_bits: int = 8
    membrane_bits: int = 24
    seed: int = 0
    out_dir: Path = Path("runs/latest")
    cache_dir: Path | None = None
    rtl: bool = True
    waves: bool = False
    report: bool = True
    other_codings: int = 500  # images of the test part on which the other codings run (0: none)
    progress: bool = True
    force: bool = False  # replace an earlier snncosim output of another kind at out_dir
    network: Path | None = None  # snncosim cosim: this integer network instead of training and converting
    data: str | None = None  # the data set (golden.data.dataset.load_dataset); None: the embedded MNIST
    input_scale: float | None = None  # the float value of data code 1 (uint8 images; default 1/255)
    value_range: float | None = None  # the range [0, R] of float images of an .npz
    jobs: int | None = None  # simulator processes at a time (None: the cores available, os.sched_getaffinity)
    full_trace: bool | None = None  # True: every image as a full trace; False: per-image digests (full traces only
    # for images whose digests differ); None: full traces up to FULL_TRACE_AUTO_IMAGES RTL images (the run directory
    # then keeps both traces for `snncosim compare` and the report's rasters), digests beyond

    def check_mode_full_trace(self) -> bool:
        """Whether the RTL images are checked as full traces (see ``full_trace``; ``--waves`` implies it)."""
        if self.waves:
            return True
        return self.rtl_images <= FULL_TRACE_AUTO_IMAGES if self.full_trace is None else bool(self.full_trace)

    def validate(self) -> None:
        if self.coding not in CODINGS:
            raise SnnCosimError(f"--coding must be one of {', '.join(CODINGS)}, got {self.coding!r}")
        if self.phases is None:
            self.phases = DEFAULT_PHASES[self.coding]
        if self.network is not None:  # snncosim cosim: the coding, K and T come from the network file
            if self.steps is not None and not 1 <= self.steps <= 65535:
                raise SnnCosimError(f"--steps must be in 1..65535, got {self.steps}")
            return self._validate_common()
        if self.coding == "fs":
            if self.steps is not None:
                raise SnnCosimError("--steps does not apply to --coding fs: an FS network takes exactly L·K steps "
                                    "per image (set K with --phases)")
            return self._validate_common()
        if self.steps is None:
            self.steps = DEFAULT_STEPS[self.coding]
        if not 1 <= self.steps <= 65535:
            raise SnnCosimError(f"--steps must be in 1..65535, got {self.steps}")
        self._validate_common()

    def _validate_common(self) -> None:
        embedded = self.data is None or self.data == "mnist"
        if self.test_images is not None and not 1 <= self.test_images <= (TEST_PART_SIZE if embedded else 1 << 40):
            raise SnnCosimError(f"--test-images must be in 1..{TEST_PART_SIZE} (the embedded test part), got "
                                f"{self.test_images}" if embedded else f"--test-images must be at least 1, got "
                                f"{self.test_images}")
        if embedded or self.test_images is not None:  # other data sets: checked against the set when loaded
            available = TEST_PART_SIZE if self.test_images is None else self.test_images
            if self.rtl and self.rtl_images > available:
                raise SnnCosimError(f"--rtl-images {self.rtl_images} is more than the {available} test images "
                                    f"selected (--test-images)")
        for name in ("input_scale", "value_range"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SnnCosimError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if self.phases is not None and self.coding != "rate" and not 1 <= self.phases <= 16:
            raise SnnCosimError(f"--phases must be in 1..16, got {self.phases}")
        if self.skip_periods < 0 or (self.coding == "weighted" and self.skip_periods * self.phases >= self.steps):
            raise SnnCosimError(f"--skip-periods must be >= 0 and leave at least one step of output integration "
                                f"(S·K < T), got S={self.skip_periods} with K={self.phases}, T={self.steps}")
        if self.skip_periods and self.coding != "weighted":
            raise SnnCosimError("--skip-periods applies to --coding weighted only")
        if not 2 <= self.weight_bits <= 32:
            raise SnnCosimError(f"--weight-bits must be in 2..32, got {self.weight_bits}")
        if not 4 <= self.membrane_bits <= 62:
            raise SnnCosimError(f"--membrane-bits must be in 4..62, got {self.membrane_bits}")
        if self.neuron == "lif" and not 1 <= self.leak_shift < self.membrane_bits:
            raise SnnCosimError(f"--leak-shift must be in 1..{self.membrane_bits - 1} (membrane bits - 1), got "
                                f"{self.leak_shift}")
        if not 0.0 < self.percentile <= 100.0:
            raise SnnCosimError(f"--percentile must be in (0, 100], got {self.percentile}")
        if not 0 <= self.seed < 2 ** 63:
            raise SnnCosimError(f"--seed must be a non-negative integer below 2**63, got {self.seed}")
        if self.other_codings < 0:
            raise SnnCosimError(f"--other-codings must be >= 0, got {self.other_codings}")
        if self.rtl_images < 0:
            raise SnnCosimError(f"--rtl-images must be >= 0, got {self.rtl_images}")
        if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int)
                                      or not 1 <= self.jobs <= 1024):
            raise SnnCosimError(f"--jobs must be an integer in 1..1024, got {self.jobs!r}")
        if self.lanes < 1 or self.lanes > 64:
            raise SnnCosimError(f"--lanes must be in 1..64, got {self.lanes}")
        if not 0.0 < self.max_rate <= 1.0:
            raise SnnCosimError(f"--max-rate must be in (0, 1], got {self.max_rate}")
        if self.neuron not in ("if", "lif"):
            raise SnnCosimError(f"--neuron must be 'if' or 'lif', got {self.neuron!r}")
        if self.reset not in ("zero", "subtract"):
            raise SnnCosimError(f"--reset must be 'zero' or 'subtract', got {self.reset!r}")
        if self.norm not in ("data", "model", "percentile"):
            raise SnnCosimError(f"--norm must be 'data', 'model' or 'percentile', got {self.norm!r}")

    def describe(self) -> str:
        if self.coding == "fs":
            return f"FS-neurons K={self.phases}"
        if self.coding == "weighted":
            return f"weighted spikes K={self.phases} S={self.skip_periods}"
        return f"rate, {self.neuron.upper()} reset={self.reset}"

    def neuron_params(self) -> NeuronParams:
        if self.neuron == "lif":
            return NeuronParams("lif", self.reset, self.leak_shift, None)
        return NeuronParams("if", self.reset, 0, None)
