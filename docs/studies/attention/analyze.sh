#!/usr/bin/env bash
# The attention comparison's table (docs/attention.md): collects the 9 sweeps of
# configs/sweeps/attention/, then prints BPC, N, KV cache and throughput per run, each type's
# BPC difference from MHA at the same (N, D), and the seed noise at MHA 100K / 1M.
set -euo pipefail
cd "$(dirname "$0")/../../.."
S=docs/studies/attention
for f in configs/sweeps/attention/*.yaml; do
  name=$(basename "$f" .yaml)
  python -m laws collect "runs/$name" --out "$S/collected/$name.csv" > /dev/null
done
python - <<'PY'
import csv, glob, json, statistics
from pathlib import Path

S = Path("docs/studies/attention")
rows, noise = [], []
for path in sorted(glob.glob(str(S / "collected" / "*.csv"))):
    for r in csv.DictReader(open(path)):
        if r["language"]:
            continue
        (noise if "noise" in path else rows).append(r)
        r["sweep"] = Path(path).stem
with open(S / "results.csv", "w", newline="") as out:
    w = csv.DictWriter(out, ["sweep", *[k for k in rows[0] if k != "sweep"]])
    w.writeheader()
    w.writerows(rows)
for r in rows:  # end-to-end training throughput of each family's parent (2M tokens)
    if r["family"] == r["name"]:
        result = json.load(open(Path("runs") / r["sweep"] / r["name"] / "result.json"))
        r["tokens_per_s"] = result["tokens"] / result["wall_seconds"]
rate = {r["sweep"]: r["tokens_per_s"] for r in rows if "tokens_per_s" in r}
size = lambda r: r["sweep"].rsplit("_", 1)[1]  # attention_<type>_<size>
mha = {(size(r), r["D"]): float(r["loss"]) for r in rows if r["attention"] == "mha"}
seeds = [float(r["loss"]) for r in noise] + [
    float(r["loss"]) for r in rows if r["sweep"] == "attention_mha_100K" and float(r["D"]) < 1.5e6
]
spread, mean = statistics.stdev(seeds), statistics.mean(seeds)
order = ["mha", "gqa", "mfa", "mfa_kr"]
lines = ["| size | type | N | D | BPC | vs MHA | KV values / token | tokens/s (2M run) |",
         "|---|---|---:|---:|---:|---:|---:|---:|"]
for r in sorted(rows, key=lambda r: (float(r["N"]) > 2e5, order.index(r["attention"]), float(r["D"]))):
    delta = (float(r["loss"]) / mha[size(r), r["D"]] - 1) * 100
    lines.append(
        f"| {size(r)} | {r['attention']} | {int(r['N']):,} | {float(r['D']) / 1e6:.2f}M | "
        f"{float(r['loss']):.4f} | {delta:+.2f}% | {int(r['kv_cache_values_per_token']):,} | "
        f"{rate[r['sweep']]:,.0f} |"
    )
lines.append("")
lines.append(f"seed noise, MHA 100K / 1M, {len(seeds)} seeds: BPC {', '.join(f'{s:.4f}' for s in seeds)}; "
             f"std {spread:.4f} ({spread / mean:.2%} of the mean)")
text = "\n".join(lines)
(S / "table.md").write_text(text + "\n")
print(text)
PY
# The same comparison through `laws compare`: the laptop study's Chinchilla law (34 MHA runs on
# the same pool, vocabulary, sequence length, lr law and precision, head size 64) scored on each
# type's 4 runs; a type's signed error against MHA's is its BPC difference as the law sees it.
python - <<'PY'
import csv
from pathlib import Path
S = Path("docs/studies/attention")
rows = list(csv.DictReader(open(S / "results.csv")))
(S / "by_type").mkdir(exist_ok=True)
for kind in ("mha", "gqa", "mfa", "mfa_kr"):
    mine = [{k: v for k, v in r.items() if k != "sweep"} for r in rows if r["attention"] == kind]
    with open(S / "by_type" / f"{kind}.csv", "w", newline="") as out:
        w = csv.DictWriter(out, mine[0].keys())
        w.writeheader()
        w.writerows(mine)
PY
for kind in mha gqa mfa mfa_kr; do
  echo "== $kind"
  python -m laws compare $S/by_type/$kind.csv --fit docs/studies/laptop/fits/chinchilla.json
done 2>&1 | tee $S/compare.txt
