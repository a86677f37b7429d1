"""The FPGA flow (``snncosim fpga``, docs/fpga.md): devices, the YoWASP tools, the synthesised design with its
weights preloaded, the figures read from the tools' reports."""
