"""IPython kernel configuration for the project's venv (``make install`` copies it to
``.venv/etc/ipython/``). It applies to the kernels that papermill, nbval, the book build and
``make lab`` start from the venv, and to nothing else.

* Those kernels are local, so ipykernel's warning that it talks to them "over TCP without
  encryption" is dropped from the logs; every other kernel message is kept.
* jsonschema's optional IRI format checker is not loaded. Every chapter imports plotly, plotly
  imports nbformat, and nbformat imports jsonschema, which loads ``rfc3987_syntax`` when it is
  installed: JupyterLab's jupyter-events pulls it in (``make lab``), ``make book`` and
  ``make test`` alone do not. That package builds an Earley parser at import, 2.7 s of every
  kernel's start on the 2-core build machine. No chapter validates IRIs, and nbformat never
  checks that format.
"""

import logging
import sys


class _NoLocalTCPWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without encryption" not in record.getMessage()


logging.getLogger("IPKernelApp").addFilter(_NoLocalTCPWarning())
# None in sys.modules: `import rfc3987_syntax` raises ImportError, which jsonschema expects
sys.modules.setdefault("rfc3987_syntax", None)
