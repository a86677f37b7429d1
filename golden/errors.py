"""TEMPORARY alias during the golden/ regrouping (removed before the issue closes): golden.core.errors."""
import importlib as _importlib
import sys as _sys

_sys.modules[__name__] = _importlib.import_module("golden.core.errors")
