"""Hyperparameter laws, Step Law's way: a grid drawn from a known convex landscape whose optimum
follows a known power law is refit to that law; an optimum on the grid's edge is flagged and left
out; a CSV round-trips; the grid design is centred on the law; `optim.hparam_law` moves the plan."""

import csv
import json
import math

import numpy as np
import pytest
import yaml
from test_sweep import _laws

from configs import ConfigError, load_config
from laws.analysis.hparams import GridRuns, fit_hparams, landscape_at, read_grid
from laws.errors import LawsError
from lightning_modules.plan import make_plan

# The truth: Step Law's published law, and a bowl around it in (ln lr, ln batch).
TRUE_LR = (1.79, -0.713, 0.307)
TRUE_BATCH = (0.58, 0.571)
CELLS = [(n, d) for n in (1e8, 4e8, 1.6e9) for d in (2e9, 8e9, 3.2e10)]


def optimum(n: float, d: float) -> tuple[float, float]:
    c, a, b = TRUE_LR
    return c * n**a * d**b, TRUE_BATCH[0] * d ** TRUE_BATCH[1]


def landscape(lr, batch, n, d):
    """Convex and broad, like Step Law's: 2% per (ln lr)^2, 0.5% per (ln batch)^2 above L0."""
    best_lr, best_batch = optimum(n, d)
    base = 2.0 * (n / 1e8) ** -0.05
    return base * (1 + 0.02 * np.log(lr / best_lr) ** 2 + 0.005 * np.log(batch / best_batch) ** 2)


def synthetic(
    shift: dict | None = None, seed: int = 0, offset: float = 0.0, batch_shift: float = 0.0
) -> GridRuns:
    """9 lr (sqrt 2 apart) x 5 batches (2x) per cell, centred on the optimum, or off it by up to
    `offset` of a step (each cell's own draw) so the near-optimal sets are not symmetric."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, d in CELLS:
        best_lr, best_batch = optimum(n, d)
        off_lr, off_batch = rng.uniform(-offset, offset, 2)
        if shift and (n, d) in shift:
            off_lr = shift[(n, d)]
        for i in range(9):
            for j in range(5):
                lr = best_lr * 2 ** (0.5 * (i - 4 + off_lr))
                batch = best_batch * 2.0 ** (j - 2 + off_batch + batch_shift)
                rows.append((n, d, lr, batch, landscape(lr, batch, n, d)))
    a = np.array(rows)
    return GridRuns(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], "synthetic")


def test_a_known_law_is_recovered():
    """Grids centred on the optimum: the near-optimal sets are symmetric in logs, so the fit
    returns the generating law itself."""
    law = fit_hparams(synthetic(), resamples=200)
    lr, batch = law["lr"], law["batch_tokens"]
    assert (lr["coef"], lr["n_exponent"], lr["d_exponent"]) == pytest.approx(TRUE_LR, rel=1e-6)
    assert (batch["coef"], batch["d_exponent"]) == pytest.approx(TRUE_BATCH, rel=1e-6)
    assert all(all(cell["used"].values()) for cell in law["cells"]) and not law["problems"]
    assert law["batch_n_test"]["supported"] is False  # the truth has no N in its batch law
    assert max(abs(cell["loss_lost"]) for cell in law["cells"]) < 1e-9
    assert law["bootstrap"]["failed"] == 0


def test_off_centre_grids_recover_the_law_to_the_grid_step():
    """Grids off the optimum by up to a third of a step: each cell's near-optimal set leans to
    one side, so the fit is off by a share of a step; the lr law keeps within 0.02 in its
    exponents, the batch law (2x steps on a flat axis) within 0.06, and the law's own choice
    costs under the 0.25% tolerance in every cell."""
    law = fit_hparams(synthetic(offset=1 / 3), resamples=200)
    lr, batch = law["lr"], law["batch_tokens"]
    assert lr["n_exponent"] == pytest.approx(TRUE_LR[1], abs=0.02)
    assert lr["d_exponent"] == pytest.approx(TRUE_LR[2], abs=0.02)
    assert batch["d_exponent"] == pytest.approx(TRUE_BATCH[1], abs=0.06)
    n, d = 4e8, 8e9  # the coefficients, judged where the data are: within the offset, 1/3 step
    fitted = lr["coef"] * n ** lr["n_exponent"] * d ** lr["d_exponent"]
    assert fitted == pytest.approx(optimum(n, d)[0], rel=2 ** (0.5 / 3) - 1)
    assert max(cell["loss_lost"] for cell in law["cells"]) < 0.0025


def test_an_edge_optimum_is_flagged_and_left_out():
    """Shift one cell's lr grid 5 steps up: its best run is its lowest lr."""
    edge = (4e8, 8e9)
    law = fit_hparams(synthetic(shift={edge: 5.0}), resamples=0)
    cell = next(c for c in law["cells"] if (c["n"], c["d"]) == edge)
    assert cell["used"] == {"lr": False, "batch": True}
    assert "best lr is the lowest tried" in cell["edges"][0]
    assert any("left out of the lr law, widen the grid" in p for p in law["problems"])
    assert law["lr"]["n_exponent"] == pytest.approx(TRUE_LR[1], abs=0.02)  # from the others


def test_batch_optima_all_on_the_edge_leave_the_lr_law_and_no_batch_law(tmp_path):
    """Every cell's batch grid starts 3 steps above its optimum: the best batch is always the
    smallest tried. The lr law is still measured; the batch law is null, and train.py then keeps
    Step Law's batch with the measured lr law."""
    law = fit_hparams(synthetic(batch_shift=3.0), resamples=50)
    assert law["batch_tokens"] is None
    assert any("no batch law" in p for p in law["problems"])
    assert law["lr"]["n_exponent"] == pytest.approx(TRUE_LR[1], abs=1e-6)
    path = tmp_path / "law.json"
    path.write_text(json.dumps(law))
    base = ["model.n=200K", "data.tokens=4M", "data.seq_len=256", "optim.micro_batch=1"]
    mine = make_plan(load_config([*base, f"optim.hparam_law={path}"]), 1, 4096)
    step = make_plan(load_config(base), 1, 4096)
    assert mine.global_batch_tokens == step.global_batch_tokens
    assert mine.as_dict()["hparam_law"] == f"{path} (batch: Step Law's)"


def test_one_batch_per_cell_measures_the_lr_law_and_no_batch_law():
    """A grid that tried a single batch in each cell (Step Law's, as `--batch-steps 1` makes)
    says nothing of the best batch: no batch law is fitted to those values."""
    grid = synthetic()
    one = np.isclose(grid.batch, [optimum(n, d)[1] for n, d in zip(grid.n, grid.d, strict=True)])
    single = GridRuns(*(x[one] for x in (grid.n, grid.d, grid.lr, grid.batch, grid.loss)), "one")
    law = fit_hparams(single, resamples=0)
    assert law["batch_tokens"] is None
    assert all(cell["used"] == {"lr": True, "batch": False} for cell in law["cells"])
    assert any("only one batch tried" in p for p in law["problems"])
    assert law["lr"]["n_exponent"] == pytest.approx(TRUE_LR[1], abs=1e-6)


def test_collinear_cells_cannot_separate_the_exponents():
    grid = synthetic()
    keep = np.isclose(grid.d / grid.n, 20)  # the cells (1e8, 2e9), (4e8, 8e9), (1.6e9, 3.2e10)
    line = GridRuns(*(getattr(grid, k)[keep] for k in ("n", "d", "lr", "batch", "loss")), "line")
    with pytest.raises(LawsError, match="do not separate lr's two exponents"):
        fit_hparams(line, resamples=0)


def test_a_csv_grid_round_trips(tmp_path):
    grid = synthetic()
    path = tmp_path / "grid.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["N", "D", "lr", "batch_tokens", "loss"])
        for row in zip(grid.n, grid.d, grid.lr, grid.batch, grid.loss, strict=True):
            out.writerow([repr(float(x)) for x in row])
    again = read_grid(path)
    assert fit_hparams(again, resamples=50)["lr"] == fit_hparams(grid, resamples=50)["lr"]
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D,lr,loss\n1e8,1e9,1e-3,2.0\n")
    with pytest.raises(LawsError, match="missing batch_tokens"):
        read_grid(bad)


def test_the_cli_writes_a_law_file_train_py_reads(tmp_path, capsys):
    grid = synthetic()
    path = tmp_path / "grid.csv"
    rows = zip(grid.n, grid.d, grid.lr, grid.batch, grid.loss, strict=True)
    path.write_text(
        "N,D,lr,batch_tokens,loss\n" + "".join(f"{a},{b},{c},{d},{e}\n" for a, b, c, d, e in rows)
    )
    out = tmp_path / "law.json"
    printed = _laws(capsys, "hparams", str(path), "--bootstrap", "100", "--out", str(out))
    assert "lr = " in printed and "not supported" in printed
    law = json.loads(out.read_text())
    base = ["model.n=200K", "data.tokens=4M", "data.seq_len=256", "optim.micro_batch=1"]
    plan = make_plan(load_config([*base, f"optim.hparam_law={out}"]), 1, 4096)
    n = plan.shape.n_params
    expected = law["lr"]["coef"] * n ** law["lr"]["n_exponent"] * 4e6 ** law["lr"]["d_exponent"]
    assert plan.lr == pytest.approx(expected)
    assert plan.as_dict()["hparam_law"] == str(out)
    assert make_plan(load_config(base), 1, 4096).as_dict()["hparam_law"] == "step-law"


def test_hparam_law_moves_the_planned_lr_and_batch(tmp_path):
    doubled = {
        "lr": {"coef": 3.58, "n_exponent": -0.713, "d_exponent": 0.307},
        "batch_tokens": {"coef": 1.16, "d_exponent": 0.571},
    }
    path = tmp_path / "doubled.json"
    path.write_text(json.dumps(doubled))
    base = ["model.n=200K", "data.tokens=4M", "data.seq_len=256", "optim.micro_batch=1"]
    step = make_plan(load_config(base), 1, 4096)
    mine = make_plan(load_config([*base, f"optim.hparam_law={path}"]), 1, 4096)
    assert mine.lr == pytest.approx(2 * step.lr)
    assert mine.global_batch_tokens == pytest.approx(2 * step.global_batch_tokens, rel=0.05)
    path.write_text('{"lr": {"coef": 1}}')
    with pytest.raises(ConfigError, match="not a hyperparameter law"):
        make_plan(load_config([*base, f"optim.hparam_law={path}"]), 1, 4096)


def test_the_grid_design_is_centred_on_the_law(tmp_path, capsys):
    out = tmp_path / "grid.yaml"
    _laws(
        capsys,
        "design",
        "--hparam-grid",
        "--cells",
        "100K:1M,400K:4M",
        "--lr-steps",
        "5",
        "--batch-steps",
        "3",
        "--vocab-size",
        "4096",
        "--seq-len",
        "256",
        "--out",
        str(out),
    )
    runs = yaml.safe_load(out.read_text())["runs"]
    assert len(runs) == 2 * 5 * 3
    cell = [r for r in runs if r["cell"] == "100K:1M"]
    lrs = sorted({r["lr"] for r in cell})
    assert [b / a for a, b in zip(lrs, lrs[1:], strict=False)] == pytest.approx(
        [math.sqrt(2)] * 4, rel=1e-3
    )
    n = cell[0]["n_params"]
    assert lrs[2] == pytest.approx(1.79 * n**-0.713 * 1e6**0.307, rel=1e-3)  # the centre
    batches = sorted({r["batch_tokens"] for r in cell})
    assert batches[1] == pytest.approx(0.58 * 1e6**0.571, abs=128)  # whole sequences of 256
    assert all(f"optim.lr={r['lr']:.4g}" in r["overrides"] for r in cell)


def test_landscape_interpolation_is_linear_in_logs():
    lrs = np.array([1e-3, 2e-3, 1e-3, 2e-3])
    batches = np.array([1e3, 1e3, 2e3, 2e3])
    losses = np.array([1.0, 2.0, 3.0, 4.0])
    at = landscape_at(lrs, batches, losses, math.sqrt(2) * 1e-3, 1e3)
    assert at == pytest.approx(1.5)  # halfway in log lr
    assert landscape_at(lrs, batches, losses, 4e-3, 1e3) is None  # outside the grid


def test_plot_and_report_show_a_grid(tmp_path, capsys):
    """A runs/ folder holding a grid: `plot hparams` fits and draws it, and `report` (with too
    few cells for a scaling law) is the grid's page: its cells and landscapes."""
    grid = synthetic()
    runs = tmp_path / "runs"
    rows = zip(grid.n, grid.d, grid.lr, grid.batch, grid.loss, strict=True)
    for i, (n, d, lr, batch, loss) in enumerate(rows):
        folder = runs / f"r{i}"
        folder.mkdir(parents=True)
        plan = {"lr": lr, "global_batch_tokens": batch, "tokens_requested": d}
        result = {
            "status": "completed",
            "n_params": n,
            "tokens": d,
            "val_bpc": loss,
            "flops": 6 * n * d,
            "code_fraction": 1.0,
            "plan": plan,
        }
        (folder / "result.json").write_text(json.dumps(result))
    drawn = json.loads(
        _laws(capsys, "plot", "hparams", str(runs), "--out", str(tmp_path / "f"), "--json")
    )
    assert len(drawn["data"]["cells"]) == 9 and (tmp_path / "f" / "hparams.png").exists()
    page = ["report", str(runs), "--grid", "coarse", "--out", str(tmp_path / "r"), "--json"]
    report = json.loads(_laws(capsys, *page))
    assert str(tmp_path / "r" / "hparams.png") in report["figures"]
    assert "Hyperparameter landscapes" in (tmp_path / "r" / "report.md").read_text()
    (runs / "failed").mkdir()
    (runs / "failed" / "result.json").write_text(json.dumps({"status": "failed", "error": "nan"}))
    law = fit_hparams(read_grid(runs), resamples=0)
    assert any("1 runs without a completed result left out" in p for p in law["problems"])
