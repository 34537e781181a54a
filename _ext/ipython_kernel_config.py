"""IPython kernel configuration for the project's venv (``make install`` copies it to
``.venv/etc/ipython/``): the kernels that papermill, nbval and the book build start are local, so
ipykernel's warning that it talks to them "over TCP without encryption" is dropped from the logs;
every other kernel message is kept."""

import logging


class _NoLocalTCPWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without encryption" not in record.getMessage()


logging.getLogger("IPKernelApp").addFilter(_NoLocalTCPWarning())
