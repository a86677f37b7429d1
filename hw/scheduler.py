"""The engine's scheduler: the registers that say where the schedule is (:class:`ScheduleRegisters`) and the FSM
that walks one image (or FS stream) through FETCH / EVENT / UPDATE / DRAIN / INHIBIT / IDRAIN / LPAD / SUMMARY per
(step, layer), IPAD / DONE per image and CLEAR after reset (:class:`Scheduler`; the schedule is in
``hw.engine``'s docstring and docs/hardware.md, "The schedule")."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

from .config import LAYER_BITS, MIN_C_IMAGE, MIN_C_LAYER, PREDICTION_BITS, STEP_BITS
from .layer_tables import index_bits

__all__ = ["ScheduleRegisters", "Scheduler"]


class ScheduleRegisters:
    """The position of the schedule, added to module ``m``: image (``n_steps``, ``step``), ``layer`` and
    ACCUMULATE pass, spike-mask ``word`` and its unvisited set bits ``mask``, lane ``group``, ``pad`` cycles; and
    stage 1's copy of the state word issued in the cycle before (``s1_*``).

    ``pass_key`` is the current pass (layer l, or L + l in junction l's skip pass), ``weight_key`` the pass of the
    issue now in stage 1 (it selects the weight memory). ``state_group`` is the channel group of the UPDATE's
    state word (``group`` itself unless spatial layers walk positions × groups)."""

    def __init__(self, m, config, passes):
        c, P, L = config, config.lanes, passes.n_layers
        self.n_steps = Signal(STEP_BITS)
        self.step = Signal(STEP_BITS)  # 1-based
        self.layer = Signal(LAYER_BITS)  # 1-based
        self.word = Signal(index_bits(max(passes.pass_words.values())))  # mask word being fetched / scanned
        self.word_base = Signal(passes.weight_addr_bits)  # word · P · G_l: weight address of (i = word·P, g = 0)
        self.mask = Signal(P)  # set bits of the current word not yet visited
        self.group = Signal(index_bits(c.max_groups))
        self.group_base = Signal(PREDICTION_BITS)  # group · P: neuron index of lane 0
        self.pad = Signal(index_bits(max(c.c_layer, c.c_image)))
        self.fs_run = Signal()  # the FS stream schedule (FS builds with global register GLOBAL_FS_MODE = 1)
        self.fire = Signal()  # FS: the current layer fires (else it collects, or the schedule is not FS)

        # ACCUMULATE pass: the main pass (key = layer) or a junction's skip pass (key = L + layer)
        self.skipping = Signal()
        self.s1_skipping = Signal()  # stage 1 of an issue made in the skip pass (selects the skip weight memory)
        self.pass_key = self.weight_key = self.layer
        if passes.skips:
            self.pass_key = Signal(LAYER_BITS + 1, name="pass_key")
            self.weight_key = Signal(LAYER_BITS + 1, name="weight_key")
            m.d.sync += self.s1_skipping.eq(self.skipping)
            m.d.comb += [self.pass_key.eq(Mux(self.skipping, self.layer + L, self.layer)),
                         self.weight_key.eq(Mux(self.s1_skipping, self.layer + L, self.layer))]

        # UPDATE walks the layer's state words (conv/pool: position-major, G_l channel groups each)
        self.state_group = self.group
        if c.spatial:
            self.state_group = Signal(index_bits(max(passes.groups.values())), name="ugroup")

        self.s1_update = Signal()  # stage 1 of an UPDATE issue: neuron lanes see this group's operands
        self.s1_inhibit = Signal()  # stage 1 of an INHIBIT issue: the inhibit lanes see this group's operands
        self.s1_group = Signal.like(self.group, name="s1_group")
        self.s1_state_group = Signal.like(self.state_group, name="s1_ugroup") if c.spatial else self.s1_group
        self.s1_base = Signal(PREDICTION_BITS, name="s1_base")
        m.d.sync += [self.s1_update.eq(0), self.s1_inhibit.eq(0)]


class Scheduler:
    """Adds the engine's FSM to module ``m``. ``ports`` is the :class:`~hw.engine.NetworkEngine` (its ports),
    ``regs`` the :class:`ScheduleRegisters`, ``tables`` the :class:`~hw.layer_tables.LayerConstants`; the other
    arguments are the units the FSM drives: the crossbar, the :class:`~hw.counters.CounterBank`, the output
    argmax, the spike-event picker (``events``), the :class:`~hw.memories.LayerMemories`, and where built the
    :class:`~hw.spatial.SpatialAddressing`, the phase counter and its K (``phases``), the
    :class:`~hw.fs_stream.FsStreamWindow` (``fs``). The FSM drives ``cfg_open`` (configuration writes
    accepted)."""

    def __init__(self, m, ports, config, regs, tables, *, crossbar, counters, argmax, events, memories, cfg_open,
                 spatial=None, phase=None, phases=None, fs=None):
        self.m, self.ports, self.config, self.regs, self.tables = m, ports, config, regs, tables
        self.crossbar, self.counters, self.argmax, self.events = crossbar, counters, argmax, events
        self.memories, self.cfg_open = memories, cfg_open
        self.spatial, self.phase, self.phases, self.fs = spatial, phase, phases, fs
        self.has_skips = bool(tables.has_skip is not None)
        self.inhibition = bool(config.inhibition)
        # FS stream: the prediction beat of image fs.image, in the cycle after the output layer's SUMMARY (the
        # argmax takes the layer's last group in that SUMMARY: its inputs are registered, see hw.argmax)
        self.pred_beat = Signal(name="pred_beat")
        if fs is not None:
            m.d.sync += [ports.pred_valid.eq(self.pred_beat), ports.pred_image.eq(fs.image)]
        self.end_of_image = "IPAD" if config.c_image > MIN_C_IMAGE else "DONE"
        self.end_of_layer = "LPAD" if config.c_layer > MIN_C_LAYER else "SUMMARY"

    # ------------------------------------------------------------------------------------ transitions
    def busy(self):
        self.m.d.comb += self.ports.busy.eq(1)

    def count_cycle(self):
        self.m.d.comb += self.counters.cycle.eq(1)

    def enter_layer(self):
        """The next (step, layer) starts at its first word and group, with cleared counters and argmax."""
        m, r = self.m, self.regs
        m.d.sync += [r.word.eq(0), r.word_base.eq(0), r.group.eq(0), r.group_base.eq(0)]
        m.d.comb += self.argmax.clear.eq(1)
        if self.spatial is not None:
            self.spatial.restart()
            m.d.sync += r.state_group.eq(0)
        if self.has_skips:
            m.d.sync += r.skipping.eq(0)
        m.d.comb += self.counters.clear.eq(1)

    def begin_image_on_start(self, otherwise=None):
        m, r, ports = self.m, self.regs, self.ports
        with m.If(ports.start):
            m.d.sync += [r.n_steps.eq(ports.n_steps), r.step.eq(1), r.layer.eq(1), r.pad.eq(0)]
            m.d.comb += self.counters.restart.eq(1)
            if self.phase is not None:
                m.d.comb += self.phase.restart.eq(1)
            self.enter_layer()
            empty = ports.n_steps == 0
            if self.fs is not None:  # FS: a stream of n_images images, image 0 entering in window 1 (n_steps ignored)
                m.d.comb += self.fs.start.eq(1)
                empty = Mux(r.fs_run, ports.n_images == 0, empty)
            with m.If(empty):
                m.next = self.end_of_image
            with m.Else():
                m.next = "FETCH"
        if otherwise is not None:
            with m.Else():
                m.next = otherwise

    def to_update(self):
        m, r = self.m, self.regs
        m.d.sync += [r.group.eq(0), r.group_base.eq(0)]
        if self.spatial is not None:
            m.d.sync += r.state_group.eq(0)
        m.next = "UPDATE"

    def next_word(self):
        """After the last event of a word: the next word, else (junctions) the skip pass, else UPDATE."""
        m, r, t = self.m, self.regs, self.tables
        with m.If(r.word == t.w_last):
            if self.has_skips:  # a junction's main pass is followed by its skip pass over the skip source's masks
                with m.If(t.has_skip & ~r.skipping):
                    m.d.sync += [r.skipping.eq(1), r.word.eq(0), r.word_base.eq(0), r.group.eq(0)]
                    if self.spatial is not None:
                        self.spatial.restart()
                    m.next = "FETCH"
                with m.Else():
                    self.to_update()
            else:
                self.to_update()
        with m.Else():
            m.d.sync += [r.word.eq(r.word + 1), r.word_base.eq(r.word_base + t.row_step)]
            if self.spatial is not None:
                self.spatial.next_word()
            m.next = "FETCH"

    def issue_state_word(self, stage1, last, after):
        """One cycle of an UPDATE / INHIBIT pass: hand state word `group` to stage 1 (read there), then the next
        word, or the drain state `after` once `last` was issued."""
        m, r = self.m, self.regs
        self.busy()
        self.count_cycle()
        m.d.comb += self.counters.state_read.eq(1)
        m.d.sync += [stage1.eq(1), r.s1_group.eq(r.group), r.s1_base.eq(r.group_base)]
        if self.spatial is not None:
            m.d.sync += [r.s1_state_group.eq(r.state_group),
                         r.state_group.eq(Mux(r.state_group == self.tables.g_last, 0, r.state_group + 1))]
        with m.If(r.group == last):
            m.d.sync += r.pad.eq(0)
            m.next = after
        with m.Else():
            m.d.sync += [r.group.eq(r.group + 1), r.group_base.eq(r.group_base + self.config.lanes)]

    # ------------------------------------------------------------------------------------ states
    def build(self):
        m = self.m
        m.d.comb += self.crossbar.op_group.eq(self.regs.group)
        with m.FSM(init="CLEAR"):
            self._clear_and_idle()
            self._fetch()
            self._event()
            self._update_passes()
            self._summary()
            if self.config.c_image > MIN_C_IMAGE:
                with m.State("IPAD"):
                    self.busy()
                    m.d.comb += self.counters.image_pad.eq(1)
                    m.d.sync += self.regs.pad.eq(self.regs.pad + 1)
                    with m.If(self.regs.pad == self.config.c_image - MIN_C_IMAGE - 1):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.ports.done.eq(1), self.cfg_open.eq(1)]
                self.begin_image_on_start(otherwise="IDLE")

    def _clear_and_idle(self):
        m, r, xb = self.m, self.regs, self.crossbar
        with m.State("CLEAR"):  # after rst only: ACC[g] = 0 for every g
            self.busy()
            m.d.comb += [self.cfg_open.eq(1), xb.op_valid.eq(1), xb.op_clear.eq(1)]
            with m.If(r.group == self.config.max_groups - 1):
                m.d.sync += r.group.eq(0)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += r.group.eq(r.group + 1)
        with m.State("IDLE"):
            m.d.comb += self.cfg_open.eq(1)
            self.begin_image_on_start()

    def _fetch(self):
        m, r, t, ports = self.m, self.regs, self.tables, self.ports
        all_lanes = (1 << self.config.lanes) - 1
        with m.State("FETCH"):
            takes_input = Signal()  # layer 1 reads spike_in (not while an FS layer 1 fires)
            m.d.comb += [takes_input.eq((r.layer == 1) & ~r.fire), ports.busy.eq(1),
                         ports.spike_in_ready.eq(takes_input)]
            source = Signal(self.config.lanes)
            m.d.comb += source.eq(Mux(r.layer == 1, ports.spike_in_data, self.memories.sel_source)
                                  & Mux(r.word == t.w_last, t.last_word_mask, all_lanes)
                                  & Mux(r.fire, 0, all_lanes))
            with m.If(~takes_input | ports.spike_in_valid):
                self.count_cycle()
                m.d.sync += r.mask.eq(source)
                has_events = source.any()
                if self.spatial is not None:  # a conv/pool input position that reaches no output costs no EVENT
                    has_events = Signal(name="events")
                    m.d.comb += has_events.eq(source.any() & self.spatial.reaches())
                    m.d.sync += self.spatial.entry.eq(self.spatial.reach_start)
                with m.If(has_events):
                    m.next = "EVENT"
                with m.Else():
                    self.next_word()

    def _event(self):
        m, r, t, xb, sp = self.m, self.regs, self.tables, self.crossbar, self.spatial
        mask_rest = self.events.rest
        with m.State("EVENT"):
            self.busy()
            m.d.comb += xb.op_valid.eq(1)
            self.count_cycle()
            m.d.comb += self.counters.weight_read.eq(1)
            if sp is None:
                m.d.comb += self.counters.acs.eq(t.group_lanes)
                with m.If(r.group == t.g_last):
                    m.d.sync += [r.group.eq(0), r.mask.eq(mask_rest)]
                    with m.If(mask_rest == 0):
                        self.next_word()
                with m.Else():
                    m.d.sync += r.group.eq(r.group + 1)
                return
            # dense: (spike, group); conv: (spike, reached position, group); pool: (source word, reached position)
            # in the word's own channel group, every set lane at once (one AC per set bit)
            m.d.comb += self.counters.acs.eq(Mux(sp.is_pool, sp.mask_count, t.group_lanes))
            with m.If(sp.is_spatial):
                m.d.comb += xb.op_group.eq(sp.acc_group)
            with m.If(sp.is_pool):
                with m.If(sp.last_entry()):
                    self.next_word()
                with m.Else():
                    m.d.sync += sp.entry.eq(sp.entry + 1)
            with m.Elif(r.group == t.g_last):
                m.d.sync += r.group.eq(0)
                with m.If(~sp.is_spatial | sp.last_entry()):
                    m.d.sync += [r.mask.eq(mask_rest), sp.entry.eq(sp.reach_start)]
                    with m.If(mask_rest == 0):
                        self.next_word()
                with m.Else():
                    m.d.sync += sp.entry.eq(sp.entry + 1)
            with m.Else():
                m.d.sync += r.group.eq(r.group + 1)

    def _update_passes(self):
        """UPDATE and DRAIN; INHIBIT and IDRAIN (lateral inhibition); LPAD."""
        m, r, xb, c = self.m, self.regs, self.crossbar, self.config
        with m.State("UPDATE"):
            m.d.comb += [xb.op_valid.eq(1), xb.op_clear.eq(1)]
            self.issue_state_word(r.s1_update, self.tables.u_last, "DRAIN")
        with m.State("DRAIN"):
            self.busy()
            self.count_cycle()
            m.next = self.end_of_layer
            if self.inhibition:
                with m.If(self.memories.inhibit_on):
                    m.d.sync += [r.group.eq(0), r.group_base.eq(0)]
                    m.next = "INHIBIT"
        if self.inhibition:
            with m.State("INHIBIT"):  # issue group g: membrane, θ and u read here, own bits in stage 1
                self.issue_state_word(r.s1_inhibit, self.tables.g_last, "IDRAIN")
            with m.State("IDRAIN"):
                self.busy()
                self.count_cycle()
                m.next = self.end_of_layer
        if c.c_layer > MIN_C_LAYER:
            with m.State("LPAD"):
                self.busy()
                self.count_cycle()
                m.d.sync += r.pad.eq(r.pad + 1)
                with m.If(r.pad == c.c_layer - MIN_C_LAYER - 1):
                    m.next = "SUMMARY"

    def _summary(self):
        m, r = self.m, self.regs
        with m.State("SUMMARY"):
            m.d.comb += [self.ports.busy.eq(1), self.ports.sum_valid.eq(1), self.counters.summary.eq(1)]
            m.d.sync += r.pad.eq(0)
            if self.fs is not None:
                with m.If(r.fs_run):
                    self._fs_next_step()
                with m.Else():
                    self._next_step()
            else:
                self._next_step()

    def _next_step(self):
        """SUMMARY of the per-step schedule: the next layer, else the next step, else the end of the image."""
        m, r = self.m, self.regs
        with m.If(r.layer == self.config.n_layers):
            with m.If(r.step == r.n_steps):
                m.next = self.end_of_image
            with m.Else():
                m.d.sync += [r.step.eq(r.step + 1), r.layer.eq(1)]
                if self.phase is not None:
                    m.d.comb += self.phase.advance.eq(1)
                self.enter_layer()
                m.next = "FETCH"
        with m.Else():
            m.d.sync += r.layer.eq(r.layer + 1)
            self.enter_layer()
            m.next = "FETCH"

    def _fs_next_step(self):
        """SUMMARY of the FS stream: the next working layer of this window, else the next step (idle layers cost
        nothing), else the next window, else the end of the stream."""
        m, r, fs, phase = self.m, self.regs, self.fs, self.phase
        m.d.comb += self.pred_beat.eq((r.layer == self.config.n_layers) & phase.last)
        with m.If(r.layer < fs.last):
            m.d.sync += r.layer.eq(r.layer + 1)
            self.enter_layer()
            m.next = "FETCH"
        with m.Elif(~phase.last):
            m.d.sync += [r.step.eq(r.step + 1), r.layer.eq(fs.first)]
            m.d.comb += phase.advance.eq(1)
            self.enter_layer()
            m.next = "FETCH"
        with m.Elif(fs.final):
            m.next = self.end_of_image
        with m.Else():
            m.d.comb += [phase.advance.eq(1), fs.advance.eq(1)]
            self.enter_layer()
            m.next = "FETCH"
            if self.config.n_layers == 1:  # every even window is empty: skip its K steps (window + 2 is in stream)
                with m.If(fs.skip_next):
                    m.d.sync += [r.step.eq(r.step + 1 + self.phases), r.layer.eq(1)]
                with m.Else():
                    m.d.sync += [r.step.eq(r.step + 1), r.layer.eq(fs.next_first)]
            else:
                m.d.sync += [r.step.eq(r.step + 1), r.layer.eq(fs.next_first)]
