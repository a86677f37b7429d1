"""Amaranth-simulator helper shared by the unit tests of the configuration registers (GlobalRegisters, LayerParams,
InhibitStrengths, FsTables): one beat of the configuration-write bus (``hw.ports.config_write_signature``)."""


async def write_beat(ctx, bus, write, addr: int, data: int) -> None:
    """Drive ``write``/``addr``/``data`` on ``bus`` and wait for one clock edge."""
    ctx.set(bus.write, int(write))
    ctx.set(bus.addr, addr)
    ctx.set(bus.data, data)
    await ctx.tick()
