"""The application layer: the ``snncosim`` command line and the main job, apart from the co-simulation machinery.

:mod:`cosim.app.cli` (the ``snncosim`` console script; ``python -m cosim.app`` runs it too), :mod:`cosim.app.options`
(the main job's options: defaults and checks, torch-free), :mod:`cosim.app.job` (the main job as stage functions,
written into a staged run directory), :mod:`cosim.app.report_text` (the table ``snncosim run`` prints) and
:mod:`cosim.app.report_html` (the HTML report of a run directory). The machinery it drives (:mod:`cosim.session`,
:mod:`cosim.runner`, :mod:`cosim.harness`, :mod:`cosim.toolchain`) knows nothing of this package.
"""
