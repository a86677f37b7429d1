// snncosim: the simulation main for harnesses with the "cpp" clock (cosim/harness.py, docs/architecture.md).
//
// It replaces cocotb's Verilator main in those builds. cocotb still drives the test through VPI (start of
// simulation, value-change, timed, ReadWrite, ReadOnly and end-of-simulation callbacks); what changes is who
// makes the clock: this loop toggles the top module's input `clk` itself, one cycle per time slot (rising edge,
// then falling edge, as the harness's "fast" Verilog clock does), without Verilator's --timing scheduler.
//
// A slot in which no cocotb callback ran takes the short path: evaluate the rising edge and check the value-change
// callbacks (evaluate_quiet: the VPI bookkeeping of writes and evaluation requests only after a callback ran),
// then evaluate the falling edge alone (see there why no callback can be waiting for it). cocotb can only ask for
// something new (a ReadWrite or ReadOnly callback, a write, a timer) from inside one of its callbacks, so the full
// VPI sequence of a time slot (IEEE 1800 regions as cocotb's own main runs them) is taken in a slot where a
// callback ran, in the slot after it and whenever a timed callback falls due. Design and cocotb see the same edges
// and values as with the Verilog clock.

#include <cmath>
#include <cstdint>
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

static uint64_t main_time = 0;  // in units of the design's time precision

// The model's evaluation itself, as Verilator generates it for the root (reached through the model's public
// `rootp`). eval_step() is this plus two pieces of per-call bookkeeping under mutexes (the deleter of dynamic
// objects and the flush of messages such as $display output): ~13 % of a simulated cycle here. It is used for the
// falling edge of a quiet slot only (below), where this harness's posedge-only design does nothing; the rising
// edge of every slot runs eval_step(), so that bookkeeping still runs once per cycle.
void Vtop___024root___eval(Vtop___024root* vlSelf);

double sc_time_stamp() { return static_cast<double>(main_time); }

#ifdef SNNCOSIM_WITHOUT_COCOTB  // scripts/bench_scale.py: the same loop with nothing on VPI (the simulator's limit)
extern "C" void vlog_startup_routines_bootstrap(void) {}
#else
extern "C" void vlog_startup_routines_bootstrap(void);  // cocotb's VPI library
#endif

namespace {

// Value-change callbacks may write signals: repeat until they settle. True if any ran.
bool settle_value_callbacks() {
    bool any = false;
    while (VerilatedVpi::callValueCbs()) any = true;
    return any;
}

// Evaluate until no VPI write asks for another evaluation. True if a callback ran.
bool evaluate(Vtop* top) {
    bool any = false;
    do {
        top->eval_step();
        VerilatedVpi::clearEvalNeeded();
        VerilatedVpi::doInertialPuts();
        any |= settle_value_callbacks();
    } while (VerilatedVpi::evalNeeded());
    return any;
}

// Evaluate when no VPI request can be pending (no callback ran since the last evaluate() ended: no inertial puts
// queued, no evaluation asked for): the model, then the value-change callbacks; only if one of them ran, what it may
// have asked for (the rest of evaluate()). Saves three VPI calls per edge in the slots where cocotb sleeps.
bool evaluate_quiet(Vtop* top) {
    top->eval_step();
    if (!settle_value_callbacks()) return false;
    VerilatedVpi::doInertialPuts();
    settle_value_callbacks();
    if (VerilatedVpi::evalNeeded()) evaluate(top);
    return true;
}

// The VPI regions that follow the evaluation of a slot in which cocotb may have asked for them.
bool synchronise(Vtop* top) {
    bool any = false;
    do {
        any |= evaluate(top);
        any |= VerilatedVpi::callCbs(cbReadWriteSynch);
        VerilatedVpi::doInertialPuts();
        any |= settle_value_callbacks();
    } while (VerilatedVpi::evalNeeded());
    return any;
}

void end_of_simulation() { VerilatedVpi::callCbs(cbEndOfSimulation); }

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    const std::unique_ptr<Vtop> top{new Vtop{""}};
    Verilated::fatalOnVpiError(false);  // cocotb's system tasks would otherwise stop the simulation

    // one clock period = 10 ns in the design's time precision (harness: `timescale 1ns/1ps -> 10,000)
    const int precision = Verilated::threadContextp()->timeprecision();
    const uint64_t period = static_cast<uint64_t>(std::llround(10.0 * std::pow(10.0, -9 - precision)));

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { end_of_simulation(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    top->clk = 0;
    bool full = true;  // take the full VPI sequence in this slot
    uint64_t deadline = 0;  // the earliest timed callback (read in full slots)
    while (!Verilated::gotFinish()) {
        Verilated::threadContextp()->time(main_time);
        bool any = false;
        if (full) {
            VerilatedVpi::callCbs(cbNextSimTime);
            any |= settle_value_callbacks();
        }
        // timed callbacks are registered only by callbacks, so the deadline of a quiet slot is the one read before
        if (full) deadline = VerilatedVpi::cbNextDeadline();
        if (deadline <= main_time) {
            VerilatedVpi::callTimedCbs();
            settle_value_callbacks();
            any = true;
        }
        top->clk = 1;
        any |= (full || any) ? evaluate(top.get()) : evaluate_quiet(top.get());
        top->clk = 0;
        if (full || any) {
            any |= synchronise(top.get());
            top->eval_end_step();
            any |= VerilatedVpi::callCbs(cbReadOnlySynch);
        } else {
            // The falling edge of a quiet slot: the model alone. The harness and the engine are posedge-only
            // (no `negedge` in their Verilog), so nothing but clk changes here, and no value-change callback can
            // be waiting for clk: one registered before this slot's rising edge would have fired there (clk went
            // 0 -> 1) and made the slot full, and none can be registered since (only callbacks register them).
            Vtop___024root___eval(top->rootp);
            top->eval_end_step();
        }
        full = any;
        main_time += period;
    }

    top->final();
    end_of_simulation();
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
