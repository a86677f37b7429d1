"""The user's torch model from the command line: ``--model FILE.py:FUNCTION [--weights W.pt]`` (convert, sweep).

Every problem in the user's file is one :class:`SnnCosimError` line, never a traceback of ours.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from golden.core.errors import SnnCosimError


def load_user_model(spec: str, weights: Path | None):
    """``FILE.py:FUNCTION`` → the ``torch.nn.Module`` that FUNCTION() returns, with ``weights`` (a state_dict saved
    by ``torch.save(model.state_dict(), PATH)``, read with ``weights_only=True``: no pickled code) loaded."""
    import torch  # here: the CLI starts without torch

    file_name, _, function = spec.partition(":")
    path = Path(file_name)
    if not function or path.suffix != ".py":
        raise SnnCosimError(f"--model {spec!r}: expected FILE.py:FUNCTION, e.g. mymodel.py:build")
    if not path.is_file():
        raise SnnCosimError(f"--model: {path}: no such file")
    module_spec = importlib.util.spec_from_file_location(f"snncosim_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SnnCosimError(f"--model {path}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code: its error is reported, not a traceback of ours
        raise SnnCosimError(f"--model {path}: importing it raised {_one_line(exc)}") from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise SnnCosimError(f"--model: {path} defines no function {function!r}")
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001
        raise SnnCosimError(f"--model {spec}: {function}() raised {_one_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise SnnCosimError(f"--model: {function}() returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        if not weights.is_file():
            raise SnnCosimError(f"--weights: {weights}: no such file")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # wrong keys/shapes, not a state_dict, damaged file
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise SnnCosimError(f"--weights {weights}: cannot be loaded into {function}(): {first_line}") from None
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            source = f"--weights {weights}" if weights is not None else f"--model {spec}"
            raise SnnCosimError(f"{source}: {name} holds NaN or infinite values; an integer network cannot be made "
                                f"from them")
    return model.eval()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__
