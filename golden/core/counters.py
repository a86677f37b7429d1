"""The per-(image, step, layer) operation counters of SPEC §5, in their one fixed order: the golden counts, the
RTL's counter bank, the summary beats and the traces all use it (docs/architecture.md, "Per-(image, step, layer)
counters")."""

COUNTER_NAMES = (
    "cycles",  # engine clock cycles spent on (t, l)
    "acs",  # (input spike, synapse) pairs added by the crossbar
    "macs",  # multiplies (direct first layer; lateral inhibition)
    "spikes",  # spikes emitted by layer l at step t
    "neuron_updates",  # neurons evaluated
    "weight_reads",  # weight-memory words read
    "state_reads",  # membrane-memory words read
    "state_writes",  # membrane-memory words written
    "saturations",  # neurons whose membrane write saturated
)
