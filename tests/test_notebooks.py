"""Every notebook in notebooks/ runs, top to bottom, in a real Jupyter kernel with injected parameters.

Papermill (on nbclient) starts an ipykernel, injects a cell after the one tagged ``parameters``
(as ``papermill -p NAME VALUE`` does), runs every cell and raises ``PapermillExecutionError`` if one
raises — so a notebook that breaks fails here, as it would for an analyst.  The kernel is this
interpreter (``sys.executable``) with this checkout on its ``PYTHONPATH``, from a kernel spec in a
temporary directory: nothing depends on a kernel installed in the user's Jupyter directories.  To
see what a notebook computed, a test appends one *probe* cell that prints a JSON value from the
kernel's namespace; the tests also read the cells' real outputs (tables as HTML, plots as PNG).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from chatlab import metrics as M
from chatlab.report import write_comparison_report
from test_report import fixed_like, legacy_like

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "chatlab-nbtest"
#: the notebooks the tests below execute; a new notebook must get a test (and be added here)
COVERED = {"fairness_report.ipynb", "policy_comparison.ipynb"}
ENV_PARAMETERS = ("CHATLAB_REPORT_DIR", "CHATLAB_SCENARIO", "CHATLAB_POLICIES", "CHATLAB_SEED", "CHATLAB_DURATION",
                  "CHATLAB_SERVICE_LEVEL_T")


@pytest.fixture(scope="session")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    """A kernel spec running this Python on this checkout, found first through ``JUPYTER_PATH``."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    pythonpath = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "chatlab (tests)", "language": "python",
        "env": {"PYTHONPATH": pythonpath, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "IPYTHONDIR": str(root / "ipython")},  # no user profile or startup files
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        yield KERNEL


@pytest.fixture(autouse=True)
def no_parameters_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ENV_PARAMETERS:  # a developer's own CHATLAB_REPORT_DIR must not steer the tests
        monkeypatch.delenv(key, raising=False)


def execute(notebook: Path, workdir: Path, kernel: str, parameters: dict[str, Any] | None = None,
            probe: str | None = None) -> tuple[nbformat.NotebookNode, Any]:
    """Run ``notebook`` in a fresh kernel (cwd ``workdir``); return the executed notebook and the probe's value.

    ``probe`` is a Python expression evaluated in the kernel after the last cell; it must give JSON.
    """
    nb = nbformat.read(notebook, as_version=4)
    if probe is not None:
        nb.cells.append(nbformat.v4.new_code_cell(f"import json as _j\nprint(_j.dumps({probe}))"))
    source = workdir / f"in-{notebook.name}"
    nbformat.write(nb, source)
    done = papermill.execute_notebook(str(source), str(workdir / f"out-{notebook.name}"), parameters=parameters or {},
                                      kernel_name=kernel, cwd=str(workdir), progress_bar=False,
                                      request_save_on_cell_execute=False, start_timeout=120, execution_timeout=300)
    value = None
    if probe is not None:
        text = "".join(o.get("text", "") for o in done.cells[-1].outputs if o.output_type == "stream")
        value = json.loads(text)
    return done, value


def outputs(nb: nbformat.NotebookNode, mime: str) -> list[str]:
    return [o.data[mime] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type in ("execute_result", "display_data") and mime in o.get("data", {})]


def html_rows(table_html: str) -> list[str]:
    """The row labels of a DataFrame's HTML (the first <th> of each body row)."""
    body = table_html.split("<tbody>", 1)[1]
    return re.findall(r"<tr>\s*<th[^>]*>([^<]*)</th>", body)


# ------------------------------------------------------------------------------ every notebook


def test_every_notebook_is_executed_here_and_committed_clean() -> None:
    found = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert found == COVERED, f"notebooks without a test here (or tests of a removed one): {found ^ COVERED}"
    for name in sorted(found):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name}: committed with outputs"
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and nb.cells[tagged[0]].cell_type == "code", f"{name}: one cell tagged parameters"


def test_a_failing_cell_fails_the_run_after_the_injected_parameters(tmp_path: Path, kernel: str) -> None:
    """The injected cell comes after the parameters cell (it wins), and an exception in a cell is an error."""
    nb = nbformat.v4.new_notebook(metadata={"language_info": {"name": "python"}}, cells=[
        nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import sys\nraise ValueError(f'boom {X} {sys.executable}')"),
        nbformat.v4.new_code_cell("never = True"),
    ])
    nbformat.write(nb, tmp_path / "fails.ipynb")
    with pytest.raises(PapermillExecutionError) as err:
        execute(tmp_path / "fails.ipynb", tmp_path, kernel, parameters={"X": 2})
    assert err.value.ename == "ValueError" and f"boom 2 {sys.executable}" in err.value.evalue
    done = nbformat.read(tmp_path / "out-fails.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in done.cells]  # (papermill puts an error banner first)
    at = next(i for i, t in enumerate(tags) if "parameters" in t)
    assert "injected-parameters" in tags[at + 1] and done.cells[-1].source == "never = True"
    assert done.cells[-1].execution_count is None  # nothing runs after the error


# ------------------------------------------------------------------------------ fairness_report

POLICIES = ("exclude_last", "round_robin")


@pytest.fixture(scope="module")
def mixed_floor_comparison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short three-seed comparison on a floor with operator groups, written by the real CLI (every
    group, the part-timers' 1 h-3 h shift too, is online within 4,500 s)."""
    out = tmp_path_factory.mktemp("cmp") / "mixed_floor"
    subprocess.run([sys.executable, "-m", "chatlab.cli", "compare", "mixed_floor", "--policies", ",".join(POLICIES),
                    "--seeds", "1-3", "--duration", "4500", "--jobs", "2", "--out", str(out)],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    return out


FAIRNESS = NOTEBOOKS / "fairness_report.ipynb"
FAIRNESS_PROBE = ("{'labels': labels, 'repeat': bug['repeat'].to_dict(), 'assignments': bug['assignments'].to_dict(),"
                  " 'jain': fairness.loc['Jain (per online h)']"
                  ".to_dict(), 'seeds': [list(r.seeds or []) for r in runs], 'pooled': [r.interval is not None for r in"
                  " runs], 'runs': [r.metrics['run'] for r in runs], 'REPORT_DIR': REPORT_DIR}")


def test_fairness_report_on_a_saved_comparison_given_as_a_parameter(tmp_path: Path, kernel: str) -> None:
    write_comparison_report([M.analyse(legacy_like()), M.analyse(fixed_like())], tmp_path / "c")
    done, ns = execute(FAIRNESS, tmp_path, kernel, parameters={"REPORT_DIR": str(tmp_path / "c")},
                       probe=FAIRNESS_PROBE)
    assert ns["labels"] == ["legacy", "exclude_last"]
    assert ns["repeat"] == {"legacy": 3, "exclude_last": 0}
    assert ns["jain"]["exclude_last"] == pytest.approx(1.0)
    assert len(outputs(done, "image/png")) == 3  # the Lorenz curves, the per-operator bars, the wait CDF
    tables = outputs(done, "text/html")
    assert html_rows(tables[-1]) == ["legacy", "exclude_last"]  # the bug table: a row per run


def test_fairness_report_pools_seeds_from_a_relative_report_dir_in_the_environment(
        tmp_path: Path, kernel: str, monkeypatch: pytest.MonkeyPatch, mixed_floor_comparison: Path) -> None:
    """CHATLAB_REPORT_DIR still works (the parameters' defaults read it), relative to the repository; several
    seeds of a policy are one pooled column (the same means as the CLI's metrics.json), not its last seed."""
    import shutil

    where = REPO / "reports" / f"_notebook_test_{tmp_path.name}"
    try:
        shutil.copytree(mixed_floor_comparison, where)
        monkeypatch.setenv("CHATLAB_REPORT_DIR", f"reports/{where.name}")
        _, ns = execute(FAIRNESS, tmp_path, kernel, probe=FAIRNESS_PROBE)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    saved = json.loads((mixed_floor_comparison / "metrics.json").read_text())
    assert ns["REPORT_DIR"] == str(where)
    assert ns["labels"] == list(POLICIES)
    assert ns["seeds"] == [[1, 2, 3], [1, 2, 3]] and ns["pooled"] == [True, True]
    for policy in POLICIES:
        assert ns["assignments"][policy] == pytest.approx(saved["runs"][policy]["assignment"]["total"])
        assert ns["jain"][policy] == pytest.approx(
            saved["runs"][policy]["fairness"]["assignments_per_online_hour"]["jain"])


def test_fairness_report_simulates_when_given_no_report_dir(tmp_path: Path, kernel: str) -> None:
    _, ns = execute(FAIRNESS, tmp_path, kernel, probe=FAIRNESS_PROBE, parameters={
        "SCENARIO": "baseline", "POLICIES": ["legacy", "exclude_last"], "SEED": 3, "DURATION": 900})
    assert ns["labels"] == ["legacy", "exclude_last"]
    assert ns["repeat"]["legacy"] > 0 and ns["repeat"]["exclude_last"] == 0
    assert all(r["duration_s"] == 900.0 and r["seed"] == 3 and r["scenario"] == "baseline" for r in ns["runs"])


# ------------------------------------------------------------------------------ policy_comparison

def test_policy_comparison_shows_intervals_and_group_fairness(
        tmp_path: Path, kernel: str, mixed_floor_comparison: Path) -> None:
    probe = ("{'labels': labels, 'key': {f'{m}|{p}': v for (m, p), v in key_table.to_dict('list').items()}, "
             "'groups': [list(i) for i in group_table.index], 'group_jain': group_table['Jain (per online h)'].tolist(),"
             " 'group_jain_ci': group_table['Jain (per online h) ± 95 %'].tolist(), 'seed_rows': len(seed_table)}")
    done, ns = execute(NOTEBOOKS / "policy_comparison.ipynb", tmp_path, kernel,
                       parameters={"REPORT_DIR": str(mixed_floor_comparison)}, probe=probe)
    saved = json.loads((mixed_floor_comparison / "metrics.json").read_text())
    assert ns["labels"] == list(POLICIES)
    for i, policy in enumerate(POLICIES):  # the table's numbers are metrics.json's, scaled for display
        assert ns["key"]["mean wait (s)|mean"][i] == pytest.approx(saved["runs"][policy]["wait"]["mean_s"])
        assert ns["key"]["mean wait (s)|± 95 %"][i] == pytest.approx(saved["ci95"][policy]["wait"]["mean_s"])
        assert ns["key"]["service level (%)|± 95 %"][i] == pytest.approx(
            100 * saved["ci95"][policy]["wait"]["service_level"])
    assert all(h > 0 for h in ns["key"]["mean wait (s)|± 95 %"])  # three seeds: real intervals
    groups = list(saved["runs"]["exclude_last"]["groups"])
    assert set(groups) == {"senior", "junior", "part_time"}
    assert ns["groups"] == [[g, p] for g in groups for p in POLICIES]
    assert all(0 < j <= 1 for j in ns["group_jain"]) and all(h >= 0 for h in ns["group_jain_ci"])
    assert ns["group_jain"][0] == pytest.approx(
        saved["runs"]["exclude_last"]["groups"][groups[0]]["assignments_per_online_hour"]["jain"])
    assert ns["seed_rows"] == 3 * len(POLICIES)
    tables = outputs(done, "text/html")
    assert html_rows(tables[0]) == list(POLICIES)  # the key-metrics table: one row per policy
    assert "±" in tables[0] and len(html_rows(tables[1])) == len(groups) * len(POLICIES)
    assert len(outputs(done, "image/png")) == 2  # the error-bar plot and the per-group plot
