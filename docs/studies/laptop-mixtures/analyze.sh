# The laptop mixture study's analysis: the code/NL 70/30 runs beside the code-only laptop study,
# measured on the same code validation set. Run after docs/studies/laptop/analyze.sh.
set -e
cd "$(dirname "$0")/../../.."
S=docs/studies/laptop-mixtures
mkdir -p $S/fits
python -m laws collect runs/laptop_mix70 --out $S/results.csv
# both mixtures in one table (code-only rows from the laptop study)
python - <<'P'
import csv
code = list(csv.DictReader(open("docs/studies/laptop/results.csv")))
mix = list(csv.DictReader(open("docs/studies/laptop-mixtures/results.csv")))
with open("docs/studies/laptop-mixtures/both.csv", "w", newline="") as out:
    w = csv.DictWriter(out, code[0].keys())
    w.writeheader()
    w.writerows(code + mix)
P
C=$(python -c "import csv; print(max(float(r['C']) for r in csv.DictReader(open('$S/results.csv'))))")
python -m laws fit $S/results.csv --law chinchilla --bootstrap 200 --budget $C --out $S/fits/chinchilla_mix70.json \
  > $S/fits/chinchilla_mix70.txt 2>&1 || echo "exit $?: no fit" >> $S/fits/chinchilla_mix70.txt
python -m laws fit $S/results.csv --law farseer --out $S/fits/farseer_mix70.json \
  > $S/fits/farseer_mix70.txt 2>&1 || echo "exit $?: no fit" >> $S/fits/farseer_mix70.txt
python -m laws fit $S/results.csv --law chinchilla --holdout 'n<1.2M' --out $S/fits/chinchilla_mix70_holdout.json \
  > $S/fits/chinchilla_mix70_holdout.txt 2>&1 || echo "exit $?: no fit" >> $S/fits/chinchilla_mix70_holdout.txt
# the paper's mixture analysis: the two laws' loss vs D/N at fixed N, crossovers marked
python -m laws plot mixtures --fit docs/studies/laptop/fits/chinchilla.json $S/fits/chinchilla_mix70.json \
  --label code100 code70 --sizes 100K 400K 1.6M --out $S > $S/mixtures.txt 2>&1 || echo "exit $?: no plot" >> $S/mixtures.txt
python -m laws report $S/both.csv --out $S --budgets $C 1e14 1e15 > $S/report.txt 2>&1 || echo "exit $?: no report" >> $S/report.txt
# measured, no law: code BPC of the 70/30 mixture against code-only at the same (N, D)
python - <<'P' | tee docs/studies/laptop-mixtures/paired.md
import csv, statistics
rows = list(csv.DictReader(open("docs/studies/laptop-mixtures/both.csv")))
key = lambda r: (int(r["N"]), round(float(r["D"]), -4))
loss = {(r["mixture"], key(r)): float(r["loss"]) for r in rows if not r["language"]}
pairs = sorted(k for m, k in loss if m == "0.7" and ("1", k) in loss)
print("| N | D | C = 6ND | code-only BPC | 70/30 BPC | 70/30 vs code-only |")
print("|---:|---:|---:|---:|---:|---:|")
for n, d in pairs:
    a, b = loss["1", (n, d)], loss["0.7", (n, d)]
    print(f"| {n:,} | {d / 1e6:.2f}M | {6 * n * d:.2e} | {a:.4f} | {b:.4f} | {(b / a - 1) * 100:+.2f}% |")
diffs = [(loss["0.7", k] / loss["1", k] - 1) * 100 for k in pairs]
print(f"\n{len(pairs)} pairs: mean {statistics.mean(diffs):+.2f}%, range {min(diffs):+.2f}% to {max(diffs):+.2f}%")
P
