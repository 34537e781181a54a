"""The two layers: the training core imports no notebook stack and runs without it."""

import json
import subprocess
import sys
import textwrap

BOOK_STACK = ("plotly", "ipywidgets", "IPython", "yaml", "papermill")

# A meta-path finder that refuses the notebook stack, as if it were not installed.
BLOCK = textwrap.dedent(f"""
    import sys
    class _Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BOOK_STACK!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
            return None
    sys.meta_path.insert(0, _Refuse())
""")


def _python(code: str, env_store: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "MEMGEN_STORE": env_store, "MEMGEN_PROGRESS": "off"}
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, env=env)


def test_core_imports_no_book_stack(tmp_path):
    r = _python("import memgen, memgen.train, memgen.store, memgen.cli, memgen.fourier, memgen.partition, "
                "memgen.baselines, memgen.experiments\n"
                f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BOOK_STACK!r}))", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_cli_trains_without_the_book_stack(tmp_path):
    code = ("import runpy; sys.argv = ['memgen', 'train', '--profile', 'test', '--width', '9', '--noise', '0.4', "
            "'--steps', '30', '--json']; runpy.run_module('memgen', run_name='__main__')")
    r = _python(code, str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["config"]["width"] == 9 and 0 <= out["test_acc"] <= 1


def test_the_blocker_really_blocks(tmp_path):
    r = _python("import memgen.book", str(tmp_path))
    assert r.returncode != 0 and "blocked by the test" in r.stderr


def test_book_layer_switches_the_renderer_and_the_core_does_not(tmp_path):
    r = _python("", str(tmp_path))  # sanity: the blocker alone runs
    assert r.returncode == 0
    code = ("import plotly.io as pio; before = pio.renderers.default; import memgen, memgen.cli; "
            "assert pio.renderers.default == before; import memgen.book; print(pio.renderers.default)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "plotly_mimetype+book"
